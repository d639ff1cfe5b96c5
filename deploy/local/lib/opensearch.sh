# OpenSearch 2, Argilla's search engine, assembled from Maven Central.
#
# The integ-test distribution on Maven Central carries only the transport module. Argilla needs
# Painless (it updates responses in the index with scripts), the common analyzers, and the k-NN
# plugin (its OpenSearch engine sets index.knn and maps vectors with the Lucene engine, which needs
# no native library). Those are published on Maven Central too: lang-painless and analysis-common as
# jars, which become modules here with their descriptors, and k-NN as a plugin zip.

OPENSEARCH_VERSION=2.19.1

opensearch_home() { echo "$STACK_DIR/opensearch-$OPENSEARCH_VERSION"; }

opensearch_install() {
  command -v java >/dev/null || ensure_debian_packages openjdk-17-jre-headless
  command -v mvn >/dev/null || ensure_debian_packages maven
  command -v unzip >/dev/null || ensure_debian_packages unzip
  local stamp home artifacts
  stamp=$(stamp_of "$LOCAL_DIR/opensearch/pom.xml" "$LOCAL_DIR/lib/opensearch.sh")
  home=$(opensearch_home)
  stamp_matches "$home/.assembled" "$stamp" && return 0
  say "assembling OpenSearch $OPENSEARCH_VERSION from Maven Central"
  artifacts=$CACHE_DIR/opensearch-artifacts
  rm -rf "$artifacts"
  mvn -q -B -f "$LOCAL_DIR/opensearch/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$artifacts" \
    >"$LOG_DIR/opensearch-install.log" 2>&1 ||
    { tail -n 30 "$LOG_DIR/opensearch-install.log" >&2; fail "could not resolve OpenSearch"; }

  rm -rf "$home"
  local unpack; unpack=$(mktemp -d "$STACK_DIR/opensearch-unpack.XXXX")
  unzip -q "$artifacts/opensearch-$OPENSEARCH_VERSION.zip" -d "$unpack"
  mv "$unpack/opensearch-$OPENSEARCH_VERSION" "$home"
  rmdir "$unpack"

  mkdir -p "$home/modules/lang-painless" "$home/modules/analysis-common" "$home/plugins/opensearch-knn"
  cp "$artifacts"/lang-painless-*.jar "$artifacts"/opensearch-scripting-painless-spi-*.jar \
    "$artifacts"/antlr4-runtime-*.jar "$artifacts"/asm-*.jar "$home/modules/lang-painless/"
  opensearch_descriptor "Painless scripting language" lang-painless \
    org.opensearch.painless.PainlessPlugin "" >"$home/modules/lang-painless/plugin-descriptor.properties"
  # The same grants as the module in OpenSearch's own distribution: Painless compiles scripts to classes.
  printf 'grant {\n  permission java.lang.RuntimePermission "createClassLoader";\n  permission java.lang.RuntimePermission "getClassLoader";\n};\n' \
    >"$home/modules/lang-painless/plugin-security.policy"
  cp "$artifacts"/analysis-common-*.jar "$home/modules/analysis-common/"
  opensearch_descriptor "Common analysis components" analysis-common \
    org.opensearch.analysis.common.CommonAnalysisPlugin lang-painless \
    >"$home/modules/analysis-common/plugin-descriptor.properties"
  unzip -q "$artifacts/opensearch-knn-$OPENSEARCH_VERSION.0.zip" -d "$home/plugins/opensearch-knn"
  echo "$stamp" >"$home/.assembled"
}

opensearch_descriptor() {
  printf 'description=%s\nversion=%s\nname=%s\nclassname=%s\njava.version=11\nopensearch.version=%s\ncustom.foldername=\nextended.plugins=%s\nhas.native.controller=false\n' \
    "$1" "$OPENSEARCH_VERSION" "$2" "$3" "$OPENSEARCH_VERSION" "$4"
}

opensearch_healthy() {
  probe http "http://127.0.0.1:$HITL_SEARCH_PORT/_cluster/health" --expect-json-key status=green,yellow
}

opensearch_up() {
  if running_pid opensearch org.opensearch.bootstrap.OpenSearch >/dev/null && opensearch_healthy; then
    say "opensearch  already running"
    return 0
  fi
  local home; home=$(opensearch_home)
  mkdir -p "$DATA_DIR/opensearch" "$LOG_DIR/opensearch"
  cat >"$home/config/opensearch.yml" <<YAML
cluster.name: hitl-search
node.name: hitl-search-1
network.host: 127.0.0.1
http.port: $HITL_SEARCH_PORT
transport.port: $((HITL_SEARCH_PORT + 100))
discovery.type: single-node
path.data: $DATA_DIR/opensearch
path.logs: $LOG_DIR/opensearch
cluster.routing.allocation.disk.threshold_enabled: false
YAML
  printf -- '-Xms%s\n-Xmx%s\n' "$HITL_SEARCH_HEAP" "$HITL_SEARCH_HEAP" >"$home/config/jvm.options.d/heap.options"
  own_by_service_user "$home" "$DATA_DIR/opensearch" "$LOG_DIR/opensearch"
  local java_home; java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  start_background opensearch env OPENSEARCH_JAVA_HOME="$java_home" $(service_user_prefix) "$home/bin/opensearch"
  wait_healthy opensearch 180 opensearch_healthy
  say "opensearch  up on 127.0.0.1:$HITL_SEARCH_PORT"
}

opensearch_down() { stop_process opensearch org.opensearch.bootstrap.OpenSearch TERM; }
