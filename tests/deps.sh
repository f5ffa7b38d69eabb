# Sourced by tests/ci.sh and examples/run.sh: installs the Debian packages a build needs, and only those
# that are missing, so a second run (or a machine that already has them) touches nothing.
#
#   kiln_install_missing PACKAGE...
#
# Needs root (or sudo) only when something is missing. Non-interactive: safe with no stdin and CI=true.
# KILN_SKIP_DEPS=1 skips the check entirely (for a machine whose dependencies come from elsewhere,
# e.g. a prefix made by pack-deps.sh and passed with CMAKE_PREFIX_PATH).

kiln_is_installed() {
  dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

kiln_install_missing() {
  if [[ "${KILN_SKIP_DEPS:-0}" == 1 ]]; then
    echo "deps: KILN_SKIP_DEPS=1, not checking packages"
    return 0
  fi
  if ! command -v dpkg >/dev/null; then
    echo "deps: no dpkg here (not Debian?); assuming these are installed: $*" >&2
    return 0
  fi
  local missing=() p
  for p in "$@"; do
    kiln_is_installed "$p" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps: all ${#} packages already installed"
    return 0
  fi

  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo -n)
    else
      echo "deps: missing packages: ${missing[*]}; run as root or install them first" >&2
      return 1
    fi
  fi
  echo "deps: installing ${missing[*]}"
  # Retries ride out a flaky mirror; --no-install-recommends keeps a fresh machine's download small.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -q -o Acquire::Retries=3 update </dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -q -y -o Acquire::Retries=3 install --no-install-recommends "${missing[@]}" </dev/null
}

# Optional packages that some tests use when present and skip (with the reason) when absent: PyTorch for the
# checkpoint interoperability test (tests/train/test_checkpoint_torch.cpp; about 1.5 min to install), Graphviz
# for rendering a plan's DOT graph, librsvg's rsvg-convert for rendering the SVG plots, and strace for watching
# the fsync order of an atomic write (tests/data/test_atomic_file.cpp).
#   kiln_install_missing "${kiln_test_extras[@]}"
kiln_test_extras=(python3-torch graphviz librsvg2-bin strace)
