# Sourced by the scripts that run npm: native addons (better-sqlite3, ssh2's crypto) compile here
# from source, against the installed Node's own headers; nothing is downloaded but npm packages.
export npm_config_build_from_source=true
node_prefix="$(dirname "$(dirname "$(command -v node)")")"
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
unset node_prefix
