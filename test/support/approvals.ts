// What the approvals tests share: a policy whose `touch` needs a person (touch of /tmp otherwise allowed).
export const ASK_ON_TOUCH_POLICY = `policies:
  ops:
    sandbox: false
    capabilities:
      - { operation: execute_binary, resource: touch }
      - { operation: write_file, resource: /tmp/** }
      - { operation: write_stdout, resource: null }
      - { operation: execute_binary, effect: ask, resource: touch, reason: touching needs a person }
`;
