import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REDACTED as R, redactArgv, redactText } from '../../src/audit/index.js';

const argvCases: Array<[string, string[], string[]]> = [
  ['--password=x', ['mysql', '--password=hunter2', 'db'], ['mysql', `--password=${R}`, 'db']],
  ['--password x', ['tool', '--password', 'hunter2', 'next'], ['tool', '--password', R, 'next']],
  ['--token, --secret, --api-key', ['x', '--token', 't', '--client-secret=s', '--api-key', 'k'], ['x', '--token', R, `--client-secret=${R}`, '--api-key', R]],
  ['single-dash java/openssl style', ['keytool', '-storepass', 'changeit', '-passin', 'pass:pw'], ['keytool', '-storepass', R, '-passin', R]],
  ['--no-password is a boolean', ['psql', '--no-password', 'mydb'], ['psql', '--no-password', 'mydb']],
  ['--token-file takes a path', ['tool', '--token-file', '/run/tok'], ['tool', '--token-file', '/run/tok']],
  ['mysql -pX attached', ['mysql', '-uroot', '-phunter2', 'db'], ['mysql', '-uroot', `-p${R}`, 'db']],
  ['mysql -p alone prompts; the next word is the database', ['/usr/bin/mysql', '-p', 'db'], ['/usr/bin/mysql', '-p', 'db']],
  ['mysql through sudo', ['sudo', 'mysqldump', '-pse=cret'], ['sudo', 'mysqldump', `-p${R}`]],
  ['-p elsewhere is a port or a path', ['ssh', '-p', '2222', 'host'], ['ssh', '-p', '2222', 'host']],
  ['mkdir -p', ['mkdir', '-p', '/tmp/a'], ['mkdir', '-p', '/tmp/a']],
  ['sshpass -p', ['sshpass', '-p', 'pw', 'ssh', 'h'], ['sshpass', '-p', R, 'ssh', 'h']],
  ['redis-cli -a', ['redis-cli', '-a', 'pw', 'ping'], ['redis-cli', '-a', R, 'ping']],
  ['curl -u user:pass', ['curl', '-u', 'bob:pw', '-ualice:pw2', '--user=c:d', 'https://x'], ['curl', '-u', `bob:${R}`, `-ualice:${R}`, `--user=c:${R}`, 'https://x']],
  ['curl -u user alone prompts', ['curl', '-u', 'bob', 'https://x'], ['curl', '-u', 'bob', 'https://x']],
  ['env assignments', ['env', 'DB_PASSWORD=a b', 'AWS_SECRET_ACCESS_KEY=k', 'HOME=/root', 'cmd'], ['env', `DB_PASSWORD=${R}`, `AWS_SECRET_ACCESS_KEY=${R}`, 'HOME=/root', 'cmd']],
  ['Authorization header', ['curl', '-H', 'Authorization: Bearer abc.def', '-H', 'Accept: */*'], ['curl', '-H', `Authorization: Bearer ${R}`, '-H', 'Accept: */*']],
  ['other secret headers', ['curl', '-H', 'X-Api-Key: k1', '-H', 'Cookie: s=1; t=2'], ['curl', '-H', `X-Api-Key: ${R}`, '-H', `Cookie: ${R}`]],
  ['URL credentials', ['git', 'clone', 'https://bob:pw@example.com/r.git'], ['git', 'clone', `https://bob:${R}@example.com/r.git`]],
  ['query-string token', ['curl', 'https://api.example.com/v1?access_token=abc&page=2'], ['curl', `https://api.example.com/v1?access_token=${R}&page=2`]],
  ['AWS access key id', ['echo', 'AKIAIOSFODNN7EXAMPLE'], ['echo', R]],
  ['nested command string', ['sh', '-c', 'curl --token abc https://x'], ['sh', '-c', `curl --token ${R} https://x`]],
  ['ordinary argv untouched', ['grep', '-r', 'key', 'src/'], ['grep', '-r', 'key', 'src/']],
  ['a trailing secret flag with no value', ['tool', '--password'], ['tool', '--password']],
];

for (const [name, input, expected] of argvCases) {
  test(`redactArgv: ${name}`, () => assert.deepEqual(redactArgv(input), expected));
}

const textCases: Array<[string, string, string]> = [
  ['quoted flag value', `mysql --password "a b c" db`, `mysql --password ${R} db`],
  ['quoted header in a command line', `curl -H 'Authorization: Basic dXNlcjpwdw==' https://x`, `curl -H 'Authorization: Basic ${R}' https://x`],
  ['env prefix in a command line', `PGPASSWORD='s e' psql -h db`, `PGPASSWORD=${R} psql -h db`],
  ['mysql in a command line', 'mysql -uroot -phunter2 -e "select 1"', `mysql -uroot -p${R} -e "select 1"`],
  ['URL password containing @', 'fetch https://u:p@ss@host/x', `fetch https://u:${R}@host/x`],
  [
    'private key block',
    'key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA\n-----END OPENSSH PRIVATE KEY-----\ndone',
    `key:\n-----BEGIN OPENSSH PRIVATE KEY-----${R}-----END OPENSSH PRIVATE KEY-----\ndone`,
  ],
  ['truncated private key block', 'x -----BEGIN RSA PRIVATE KEY-----\nMIIEow', `x -----BEGIN RSA PRIVATE KEY-----${R}-----END RSA PRIVATE KEY-----`],
  ['public key left alone', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----'],
  ['known token shapes', 'gh: ghp_abcdefghijklmnopqrstuvwxyz0123456789 sk: sk-ant-api03-abcdefghijklmnopqrstu', `gh: ${R} sk: ${R}`],
  ['JWT', 'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpM', `token ${R}`],
  ['plain prose unchanged', 'exit status 1: no such file or directory', 'exit status 1: no such file or directory'],
  ['sort --key is not a secret', 'sort --key=2 -t, file.csv', 'sort --key=2 -t, file.csv'],
  ['YAML key: value', 'db:\n  password: hunter2\n  user: app', `db:\n  password: ${R}\n  user: app`],
  ['a JSON body in a command line', `curl -d '{"user":"u","api_key":"k 1","n":2}' https://x`, `curl -d '{"user":"u","api_key":"${R}","n":2}' https://x`],
  ['dotted and single-quoted names', "db.password: s3, {'auth_token':'t'}", `db.password: ${R}, {'auth_token':'${R}'}`],
  ['a quoted assignment is hidden whole', 'curl -d "password=hunter2" -d \'api_token=t\' x', `curl -d ${R} -d ${R} x`],
  ['one redacted already is left as it is (an approval quotes redacted text)', `replace "password=${R}" with 'password=${R}'`, `replace "password=${R}" with 'password=${R}'`],
  // Words as a shell splits them, which the scan takes in runs: any whitespace (no-break and ideographic
  // spaces too) ends one, quotes and backslashes join what they hold, a last backslash stands for itself.
  ['a flag and its value apart by a no-break space', 'tool --password\u00a0hunter2 next', `tool --password\u00a0${R} next`],
  ['a quoted value holding an escaped quote', 'tool --password\u3000"a \\" b" next', `tool --password\u3000${R} next`],
  ['backslashes inside a flag and a value', 'tool --pass\\word x --token a\\ b c', `tool --pass\\word ${R} --token ${R} c`],
  ['a value ending in a backslash', 'tool --token x\\', `tool --token ${R}`],
  ['a line ending in a backslash', 'tool\\', 'tool\\'],
  ['names that only contain a secret word are not secrets', 'ssh-keygen: -l reads; monkey: banana; tokens: 5; secret_santa: bob', 'ssh-keygen: -l reads; monkey: banana; tokens: 5; secret_santa: bob'],
];

for (const [name, input, expected] of textCases) {
  test(`redactText: ${name}`, () => assert.equal(redactText(input), expected));
}

test('redaction is idempotent', () => {
  for (const [, input] of textCases) assert.equal(redactText(redactText(input)), redactText(input));
  for (const [, input] of argvCases) assert.deepEqual(redactArgv(redactArgv(input)), redactArgv(input));
});

test('redactText stays linear on long adversarial input', () => {
  const start = performance.now();
  for (const s of ['a+'.repeat(100_000), 'x-'.repeat(100_000), 'A='.repeat(100_000), `Cookie: ${' '.repeat(200_000)}`, 'password:'.repeat(50_000), `"token": "${'a'.repeat(200_000)}`]) redactText(s);
  // About 0.2 s here, more beside the rest of the suite; a backtracking pattern over 200 KB takes far longer.
  assert.ok(performance.now() - start < 10_000);
});
