# Sourced by the scripts that run npm: native addons (better-sqlite3, node-pty, ssh2's crypto) compile
# here from source, against the installed Node's own headers; nothing is downloaded but npm packages.
node_prefix="$(dirname "$(dirname "$(command -v node)")")"
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
unset node_prefix

# The install itself, told to build from source. Only here: npm 11 warns about that setting (the addons'
# install scripts read it; npm does not know it) on every command that sees it.
npm_ci_from_source() {
  npm_config_build_from_source=true npm ci --no-audit --no-fund
}
