#!/usr/bin/env bash
# Prints the Debian archive mirror this machine's apt sources already use (its URI, e.g.
# http://MIRROR/debian), so the scripts that fetch from Debian 13 (trixie) use the same
# mirror as the machine itself and no host name is written down anywhere.
#
#   scripts/debian-mirror.sh           print it
#   source scripts/debian-mirror.sh    defines debian_mirror (used by test-opencl.sh, check-ptx.sh)
#
# CHROMA_DEBIAN_MIRROR overrides the lookup. Otherwise the first enabled "deb" source whose suite
# is the machine's own release (its codename, or codename-updates / -backports; never -security,
# which is a different archive, nor a third-party repository) is taken, from the deb822 files
# /etc/apt/sources.list.d/*.sources first, then the one-line /etc/apt/sources.list and
# /etc/apt/sources.list.d/*.list.

debian_mirror() {
  if [[ -n "${CHROMA_DEBIAN_MIRROR:-}" ]]; then
    echo "${CHROMA_DEBIAN_MIRROR%/}"
    return 0
  fi
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [[ -z "$codename" ]]; then
    echo "debian-mirror: /etc/os-release names no VERSION_CODENAME; set CHROMA_DEBIAN_MIRROR" >&2
    return 1
  fi
  local files=() f
  for f in /etc/apt/sources.list.d/*.sources; do [[ -f "$f" ]] && files+=("$f"); done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [[ -f "$f" ]] && files+=("$f"); done
  local mirror=""
  if ((${#files[@]})); then
    mirror=$(awk -v codename="$codename" '
      # A suite of this release from the main archive: "bookworm", "bookworm-updates", "bookworm-backports".
      function ours(suite) { return suite == codename || suite == codename "-updates" || suite == codename "-backports" }
      function usable(uri) { return uri ~ /^(https?|ftp|file):/ && uri !~ /security/ }
      function found(uri) { sub(/\/+$/, "", uri); print uri; done = 1; exit }
      # deb822 paragraphs (.sources files)
      function flush(   n, i, s, m, j, u) {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no") {
          n = split(suites, s, /[ \t]+/); m = split(uris, u, /[ \t]+/)
          for (i = 1; i <= n; i++) if (ours(s[i])) for (j = 1; j <= m; j++) if (usable(u[j])) found(u[j])
        }
        types = uris = suites = enabled = ""
      }
      FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
      /^[ \t]*#/ { next }
      deb822 && /^[ \t]*$/ { flush(); next }
      deb822 {
        line = $0; key = tolower(line); sub(/:.*/, "", key); sub(/^[^:]*:[ \t]*/, "", line)
        if (key == "types") types = line
        else if (key == "uris") uris = line
        else if (key == "suites") suites = line
        else if (key == "enabled") enabled = line
        next
      }
      # one-line format: deb [options] uri suite components...
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if (usable($i) && ours($(i + 1))) found($i)
      }
      END { if (!done) flush() }
    ' "${files[@]}")
  fi
  if [[ -z "$mirror" ]]; then
    echo "debian-mirror: no Debian mirror for $codename found in /etc/apt/sources.list(.d); set CHROMA_DEBIAN_MIRROR" >&2
    return 1
  fi
  echo "$mirror"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  debian_mirror
fi
