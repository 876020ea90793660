// A notification's priority: what `notify send --priority` takes (and completes), and what channels map
// to their own scale. Its own module so that the command's definition does not load the channels.
export type Priority = 'low' | 'normal' | 'high';
export const PRIORITIES: readonly Priority[] = ['low', 'normal', 'high'];
