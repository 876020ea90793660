/** The longest delay a Node timer keeps (setTimeout's 32-bit limit, about 24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
