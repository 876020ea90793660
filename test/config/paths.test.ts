import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { auditDbFile, knownHostsFile, policiesFile, remuxHome, socketFile } from '../../src/config/paths.js';

describe('file locations and their environment variables', () => {
  test('REMUX_HOME, else XDG_CONFIG_HOME/remux, else ~/.config/remux', () => {
    assert.equal(remuxHome({ REMUX_HOME: '/srv/remux' }), '/srv/remux');
    assert.equal(remuxHome({ XDG_CONFIG_HOME: '/x' }), '/x/remux');
    assert.equal(remuxHome({}), join(homedir(), '.config', 'remux'));
  });

  test('known_hosts: REMUX_KNOWN_HOSTS, its RPIPE_ alias, the config, else ~/.ssh/known_hosts', () => {
    assert.equal(knownHostsFile({}), join(homedir(), '.ssh', 'known_hosts'));
    assert.equal(knownHostsFile({ REMUX_KNOWN_HOSTS: '/etc/remux/kh' }), '/etc/remux/kh');
    assert.equal(knownHostsFile({ RPIPE_KNOWN_HOSTS: '~/kh' }), join(homedir(), 'kh'));
    assert.equal(knownHostsFile({}, '/from/config'), '/from/config');
    assert.equal(knownHostsFile({ REMUX_KNOWN_HOSTS: '/env' }, '/from/config'), '/env', 'the environment beats the file');
  });

  test('the seed RPIPE_* names are read as aliases', () => {
    assert.equal(policiesFile({ REMUX_HOME: '/h', RPIPE_POLICY_CONFIG: '/p.yaml' }), '/p.yaml');
    assert.equal(auditDbFile({ REMUX_HOME: '/h', RPIPE_AUDIT_LOG_DIR: '/logs' }), '/logs/audit.db');
    assert.equal(socketFile({ REMUX_HOME: '/h', RPIPE_SOCKET: '/tmp/remux.sock' }), '/tmp/remux.sock');
    assert.equal(socketFile({ REMUX_HOME: '/h' }), '/h/run/remux.sock');
    assert.equal(auditDbFile({ REMUX_HOME: '/h', REMUX_AUDIT_DB: '/a.db', RPIPE_AUDIT_LOG_DIR: '/logs' }), '/a.db');
  });
});
