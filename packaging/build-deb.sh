#!/usr/bin/env bash
# Builds the Debian package of unroot from a built binary, as cargo-deb would (without it):
# target/debian/unroot_<version>_<arch>.deb, holding
#
#   /usr/bin/unroot                                    the binary, stripped
#   /usr/share/man/man1/*.1.gz                         every man page given (see MAN)
#   /usr/share/bash-completion/completions/unroot      `unroot completions bash`
#   /usr/share/zsh/vendor-completions/_unroot          `unroot completions zsh`
#   /usr/share/fish/vendor_completions.d/unroot.fish   `unroot completions fish`
#   /usr/share/doc/unroot/copyright                    DEP-5: MIT OR Apache-2.0
#   /usr/share/doc/unroot/changelog.gz                 CHANGELOG.md
#
# usage: bash packaging/build-deb.sh [-o DIR] [BINARY [MAN...]]
#
#   BINARY  the unroot to package; without it `cargo build --release --locked` runs and
#           target/release/unroot is packaged. Its `--version` must match Cargo.toml's.
#   MAN     man pages: *.1 files, or folders whose every *.1 is installed. Without any, the
#           pages `BINARY man --dir` writes are installed (unroot.1, unroot-COMMAND.1, …).
#   -o DIR  where the .deb goes (default: target/debian). Its path is printed on stdout.
#
# Reproducible: the same binary and SOURCE_DATE_EPOCH (default: the time of the last
# commit) give the same bytes; files 0644, folders and the binary 0755, all root:root.
# Version, synopsis and homepage come from Cargo.toml; Depends from dpkg-shlibdeps
# (package dpkg-dev), else from the newest GLIBC_ symbol version the binary needs.
# Maintainer: "$DEBFULLNAME <$DEBEMAIL>" when both are set. DEB_BUILD_OPTIONS=nostrip keeps
# the symbols.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

die() { printf 'build-deb.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '13,20s/^# \{0,1\}//p' "$0" >&2; }

out="$repo/target/debian"
while getopts o:h opt; do
  case $opt in
    o) out=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

if [ $# -ge 1 ]; then
  bin=$1
  shift
else
  (cd "$repo" && cargo build --release --locked) >&2
  bin="$repo/target/release/unroot"
fi
[ -f "$bin" ] && [ -x "$bin" ] || die "no executable at $bin"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (package dpkg)"

# What Cargo.toml says of the package: the first `key = "value"` of [package].
field() { sed -n '/^\[package\]/,/^\[/s/^'"$1"' = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n 1; }
version=$(field version)
synopsis=$(field description)
homepage=$(field repository)
[ -n "$version" ] && [ -n "$synopsis" ] || die "no version or description in $repo/Cargo.toml"
said=$(NO_COLOR=1 "$bin" --version)
[ "$said" = "unroot $version" ] || die "$bin says \"$said\", Cargo.toml says $version: rebuild it"
# A semver pre-release (1.0.0-rc.1) sorts before its release in Debian as 1.0.0~rc.1.
debversion=${version//-/\~}
arch=$(dpkg --print-architecture)
maintainer="${DEBFULLNAME:-unroot developers} <${DEBEMAIL:-unroot-dev@users.noreply.github.com}>"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || stat -c %Y "$repo/Cargo.toml")
fi
export SOURCE_DATE_EPOCH

umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
doc="$root/usr/share/doc/unroot"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" "$doc" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"

cp "$bin" "$root/usr/bin/unroot"
case " ${DEB_BUILD_OPTIONS:-} " in
  *" nostrip "*) ;;
  # As dh_strip does: the symbols out, the build id kept.
  *) strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/unroot" ;;
esac
run() { NO_COLOR=1 "$root/usr/bin/unroot" "$@"; }

# Man pages: every *.1 given, or every page `unroot man --dir` writes (unroot.1 and an
# unroot-COMMAND.1 for each command the main page names).
if [ $# -eq 0 ]; then
  run man --dir "$work/man" 2>/dev/null
  set -- "$work/man"
fi
pages=()
for m in "$@"; do
  if [ -d "$m" ]; then
    found=("$m"/*.1)
    [ -e "${found[0]}" ] || die "no *.1 in $m"
    pages+=("${found[@]}")
  else
    pages+=("$m")
  fi
done
for p in "${pages[@]}"; do
  case $p in *.1) ;; *) die "$p is not a section 1 man page (*.1)" ;; esac
  [ -s "$p" ] || die "man page $p is missing or empty"
  gzip -9n <"$p" >"$root/usr/share/man/man1/$(basename "$p").gz"
done

run completions bash >"$root/usr/share/bash-completion/completions/unroot"
run completions zsh >"$root/usr/share/zsh/vendor-completions/_unroot"
run completions fish >"$root/usr/share/fish/vendor_completions.d/unroot.fish"

gzip -9n <"$repo/CHANGELOG.md" >"$doc/changelog.gz"
{
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: unroot
Source: $homepage

Files: *
Copyright: the unroot developers
License: MIT or Apache-2.0

License: MIT
EOF
  # LICENSE-MIT from its permission notice on, as a DEP-5 text block.
  sed -n '/^Permission is hereby granted/,$p' "$repo/LICENSE-MIT" | sed 's/^$/./; s/^/ /'
  cat <<EOF

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0"; it is also LICENSE-APACHE in
 the source.
EOF
} >"$doc/copyright"

# Depends: what the binary links against, at the versions its symbols need.
depends=
if command -v dpkg-shlibdeps >/dev/null; then
  # dpkg-shlibdeps reads debian/control of the current folder; a minimal one will do.
  mkdir -p "$work/src/debian"
  printf 'Source: unroot\n\nPackage: unroot\nArchitecture: any\n' >"$work/src/debian/control"
  depends=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/unroot" 2>"$work/shlibdeps.log" |
    sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.log" >&2; die "dpkg-shlibdeps failed"; }
fi
if [ -z "$depends" ]; then
  glibc=$(objdump -T "$root/usr/bin/unroot" | grep -o 'GLIBC_[0-9.]*' | cut -d_ -f2 | sort -V | tail -n 1)
  [ -n "$glibc" ] || die "cannot tell which glibc $bin needs (objdump -T)"
  depends="libc6 (>= $glibc)"
  objdump -p "$root/usr/bin/unroot" | grep -q 'NEEDED *libgcc_s' && depends+=", libgcc-s1"
fi

# Modes and times as the package promises, whatever umask and clock made them.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/unroot"

# Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per folder.
installed_size=$(cd "$root" && find usr -printf '%y %s\n' |
  awk '$1 == "f" { k += int(($2 + 1023) / 1024) } $1 != "f" { k += 1 } END { print k }')
(cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"

cat >"$root/DEBIAN/control" <<EOF
Package: unroot
Version: $debversion
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Suggests: docker.io | docker-ce
Section: admin
Priority: optional
Homepage: $homepage
Description: $synopsis
 unroot moves running Docker containers off root in planned, health-gated
 stages. A TOML plan encodes the rollout as a dependency graph of days and
 waves; unroot validates it offline, previews each day against the live
 daemon, then backs up, re-owns, recreates, health-gates and rolls back by
 itself, and resumes after a crash. It also audits which containers run as
 root and writes a plan from what the daemon shows.
EOF
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$(cd "$out" && pwd)/unroot_${debversion}_${arch}.deb"
dpkg-deb --build --root-owner-group -Zxz "$root" "$deb" >&2
echo "$deb"
