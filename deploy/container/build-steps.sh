#!/bin/bash
# build-steps.sh: run the build stage of deploy/container/Containerfile without a
# container engine, on this Debian 12 host, in a scratch directory. CI uses it to check
# that the Containerfile's commands really build mtastsd on Debian 12 and that the
# runtime stage installs every library the binary links.
#
# The commands are read from the Containerfile itself (RUN lines of the stage named
# "build"), so the two cannot drift apart. Differences from a real image build:
#   - the source is the current work tree (tracked and untracked files that git does
#     not ignore), copied into the scratch directory, not "COPY . /src";
#   - DESTDIR (an ARG of the Containerfile) points into the scratch directory;
#   - RUN commands that call apt-get are not run on the host (they would delete the
#     host's apt lists): the packages they install are checked with dpkg-query instead,
#     or installed with plain apt-get install when --install is given.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: build-steps.sh [--dry-run] [--install] [--keep] [--containerfile FILE] [--src DIR]
       build-steps.sh --check-runtime BINARY [--containerfile FILE]

Runs the build stage of the Containerfile on this host in a scratch directory, then
checks that every shared library the built mtastsd needs comes from a package the
runtime stage installs.

  --dry-run             print the build stage's instructions (one per line) and exit
  --install             apt-get install the build stage's packages if missing
                        (needs root); default: fail listing the missing ones
  --keep                keep the scratch directory and print its path
  --containerfile FILE  default: the Containerfile beside this script
  --src DIR             source tree to build, default: the repository of this script
  --check-runtime BIN   only check BIN's shared libraries against the runtime stage
  -h, --help            this help
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
containerfile=$here/Containerfile
src=$(cd "$here/../.." && pwd)
dry_run=0 install=0 keep=0 check_bin=

while [[ $# -gt 0 ]]; do
	case $1 in
	--dry-run) dry_run=1 ;;
	--install) install=1 ;;
	--keep) keep=1 ;;
	--containerfile) containerfile=${2:?--containerfile needs a file}; shift ;;
	--src) src=${2:?--src needs a directory}; shift ;;
	--check-runtime) check_bin=${2:?--check-runtime needs a binary}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "build-steps.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

die() {
	echo "build-steps.sh: $*" >&2
	exit 1
}

[[ -r $containerfile ]] || die "cannot read $containerfile"

# Prints the instructions of one stage, continuation lines joined, one per line.
# $1: "build" for the stage named build, "final" for the last stage.
stage_instructions() {
	local want=$1 line joined='' stage='' n=0
	local -a out=()
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%$'\r'}
		if [[ -z $joined && $line =~ ^[[:space:]]*(#|$) ]]; then
			continue
		fi
		if [[ $line == *\\ ]]; then
			joined+="${line%\\} "
			continue
		fi
		joined+=$line
		# collapse runs of blanks
		joined=$(printf '%s' "$joined" | tr -s ' \t' '  ')
		joined=${joined# }
		if [[ ${joined^^} =~ ^FROM[[:space:]] ]]; then
			n=$((n + 1))
			if [[ ${joined,,} =~ [[:space:]]as[[:space:]]+([a-z0-9._-]+)$ ]]; then
				stage=${BASH_REMATCH[1]}
			else
				stage=stage$n
			fi
			[[ $want == final ]] && out=()
		fi
		if [[ $want == final || $stage == "$want" ]]; then
			out+=("$joined")
		fi
		joined=
	done <"$containerfile"
	[[ ${#out[@]} -gt 0 ]] || return 1
	printf '%s\n' "${out[@]}"
}

# The packages an "apt-get install" command line names (words after "install" that are
# not options, up to the end of that command).
apt_packages() {
	local cmd=$1 word seen=0
	# split at && ; | so that only the install command's words count
	cmd=${cmd//&&/$'\n'}
	cmd=${cmd//;/$'\n'}
	while IFS= read -r part; do
		seen=0
		for word in $part; do
			if [[ $seen == 1 ]]; then
				[[ $word == -* ]] || printf '%s\n' "$word"
			elif [[ $word == install ]]; then
				seen=1
			fi
		done
	done <<<"$cmd"
}

# Every NEEDED library of $1 must belong to a package the final stage installs (or to
# libc6, which every Debian image has).
check_runtime() {
	local bin=$1 lib path pkg final allowed missing=0
	[[ -x $bin ]] || die "$bin: not an executable"
	command -v readelf >/dev/null || die "readelf (binutils) is needed"
	final=$(stage_instructions final) || die "no final stage in $containerfile"
	allowed=" libc6 "
	while IFS= read -r line; do
		if [[ $line == RUN* && $line == *apt-get* ]]; then
			allowed+="$(apt_packages "$line" | tr '\n' ' ')"
		fi
	done <<<"$final"
	while IFS= read -r lib; do
		path=$(ldd "$bin" | awk -v l="$lib" '$1 == l && $3 ~ /^\// { print $3; exit }')
		[[ -n $path ]] || { echo "  $lib: not found by ldd" >&2; missing=1; continue; }
		pkg=
		for p in "$path" "$(readlink -f "$path")" "/usr${path#/usr}" "${path#/usr}"; do
			pkg=$(dpkg-query -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) && [[ -n $pkg ]] && break
		done
		if [[ -z $pkg ]]; then
			echo "  $lib ($path): no Debian package owns it" >&2
			missing=1
		elif [[ $allowed != *" $pkg "* ]]; then
			echo "  $lib ($path): package $pkg is not installed by the runtime stage" >&2
			missing=1
		else
			echo "  $lib -> $pkg"
		fi
	done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
	[[ $missing == 0 ]] || die "the runtime stage lacks libraries $bin needs"
	echo "runtime stage provides every library of $bin"
}

if [[ -n $check_bin ]]; then
	check_runtime "$check_bin"
	exit 0
fi

steps=$(stage_instructions build) || die "no stage named 'build' in $containerfile"

if [[ $dry_run == 1 ]]; then
	printf '%s\n' "$steps"
	exit 0
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mtastsd-build-steps.XXXXXX")
if [[ $keep == 1 ]]; then
	trap 'echo "build-steps.sh: scratch directory kept: $scratch"' EXIT
else
	trap 'rm -rf "$scratch"' EXIT
fi

workdir=/
declare -A args=()
while IFS= read -r line; do
	instr=${line%% *}
	rest=${line#* }
	case ${instr^^} in
	FROM) echo "== $line (this host: $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release))" ;;
	ARG)
		name=${rest%%=*}
		[[ $rest == *=* ]] && args[$name]=${rest#*=}
		;;
	WORKDIR) workdir=$rest ;;
	COPY)
		[[ $rest =~ ^\.[[:space:]]+(.*)$ ]] || die "unsupported COPY: $line"
		dest=${BASH_REMATCH[1]}
		echo "== COPY . $dest: copying $src"
		mkdir -p "$scratch/root$dest"
		if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
			# files deleted from the work tree but still in the index are skipped
			(cd "$src" && git ls-files -z --cached --others --exclude-standard |
				while IFS= read -r -d '' f; do
					[[ -e $f || -L $f ]] && printf '%s\0' "$f"
				done | tar --null --no-recursion -T - -cf -) | tar -C "$scratch/root$dest" -xf -
		else
			tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . |
				tar -C "$scratch/root$dest" -xf -
		fi
		;;
	RUN)
		if [[ $rest == *apt-get* ]]; then
			mapfile -t pkgs < <(apt_packages "$rest")
			missing=()
			for p in "${pkgs[@]}"; do
				dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
					missing+=("$p")
			done
			echo "== RUN apt-get: ${#pkgs[@]} packages, ${#missing[@]} missing"
			if [[ ${#missing[@]} -gt 0 ]]; then
				[[ $install == 1 ]] ||
					die "missing build packages (run with --install as root): ${missing[*]}"
				DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
					"${missing[@]}"
			fi
			continue
		fi
		echo "== RUN $rest"
		env_args=()
		for a in "${!args[@]}"; do env_args+=("$a=${args[$a]}"); done
		# DESTDIR and any absolute path in the Containerfile's stage live under root/
		env_args+=("DESTDIR=$scratch/root${args[DESTDIR]:-/out}")
		mkdir -p "$scratch/root$workdir"
		(cd "$scratch/root$workdir" && env "${env_args[@]}" bash -euo pipefail -c "$rest")
		;;
	*) die "unsupported instruction in the build stage: $line" ;;
	esac
done <<<"$steps"

bin=$scratch/root${args[DESTDIR]:-/out}/usr/bin/mtastsd
[[ -x $bin ]] || die "the build stage did not install $bin"
grep -q "COPY --from=build ${args[DESTDIR]:-/out}/usr/bin/mtastsd " "$containerfile" ||
	die "the final stage does not copy ${args[DESTDIR]:-/out}/usr/bin/mtastsd"
check_runtime "$bin"
echo "build stage OK: $("$bin" --version)"
