// Policy files the tests share.

/** Policy `read_only`: echo and its output, nothing else; no OS sandbox, so it runs on any host a test starts. */
export const ECHO_POLICY = `policies:
  read_only:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: echo }
      - { operation: write_stdout, resource: null }
`;
