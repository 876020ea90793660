// import() of a user's ES module (`remux rpc --tools FILE`), from an ordinary CommonJS module: the CLI's
// bundle runs as a vm.Script (launch.cts), whose own import() has no module loader behind it.
export = function importModule(url: string): Promise<Record<string, unknown>> {
  return import(url) as Promise<Record<string, unknown>>;
};
