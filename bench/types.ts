/** What every benchmark returns: machine-readable figures and the lines it prints. */
export interface BenchResult {
  name: string;
  figures: Record<string, number>;
  lines: string[];
}
