#!/usr/bin/env bash
# Times `bulwark pki bootstrap` (3 brokers, 2 clients, JKS) against the seed's way of making the same
# keystores by hand with openssl + keytool (make-seed-keystores.sh), a few repetitions each, in temp
# dirs, and prints both times and the ratio. Not a test: a number to look at.
#   BULWARK_BIN     the bulwark binary (default: the newest build-*/src/cli/bulwark or build/src/cli/bulwark)
#   BULWARK_SHARED  folder with seed-examples/ (default: ../shared relative to the repository)
#   REPS            repetitions of each (default 3)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${BULWARK_SHARED:-../shared}
[[ $shared = /* ]] || shared=$repo/$shared
seed_script=$shared/seed-examples/make-seed-keystores.sh
reps=${REPS:-3}
bin=${BULWARK_BIN:-}
if [[ -z $bin ]]; then
  bin=$(ls -t "$repo"/build*/src/cli/bulwark 2>/dev/null | head -1 || true)
fi
[[ -x $bin ]] || { echo "no bulwark binary: build it or set BULWARK_BIN" >&2; exit 1; }
[[ -f $seed_script ]] || { echo "no seed script at $seed_script (set BULWARK_SHARED)" >&2; exit 1; }
command -v keytool >/dev/null || { echo "keytool (Java) is needed for the seed's way" >&2; exit 1; }

work=$(mktemp -d /tmp/pki-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

bulwark_once() { # $1 = output dir, $2 = key type
  "$bin" pki bootstrap --dir "$1" --format jks --password sls1234567 --key "$2" \
    --broker kafka-1=localhost,127.0.0.1 --broker kafka-2=localhost,127.0.0.1 --broker kafka-3=localhost,127.0.0.1 \
    --client admin-1 --client client-1 >/dev/null
  # Same output as the seed: 5 keystores, 5 truststores
  [[ $(ls "$1"/export/*/*.keystore.jks | wc -l) -eq 5 && $(ls "$1"/export/*/*.truststore.jks | wc -l) -eq 5 ]]
}

seed_once() { # $1 = output dir
  bash "$seed_script" "$1" >/dev/null 2>&1
  [[ $(ls "$1"/*.keystore.jks | wc -l) -eq 5 && $(ls "$1"/*.truststore.jks | wc -l) -eq 5 ]]
}

time_it() { # $1 = label, rest = command taking an output dir as last argument
  local label=$1 total=0 start end
  shift
  for ((i = 1; i <= reps; i++)); do
    start=$(now)
    "$@" "$work/$label-$i"
    end=$(now)
    total=$(awk -v t="$total" -v d="$(elapsed "$start" "$end")" 'BEGIN { print t + d }')
  done
  awk -v t="$total" -v n="$reps" 'BEGIN { printf "%.3f", t / n }'
}

echo "3 brokers + 2 clients, JKS keystores and truststores, $reps repetitions each (mean seconds per run)"
bulwark_ec() { bulwark_once "$1" ec:p256; }
bulwark_rsa() { bulwark_once "$1" rsa:2048; }
t_ec=$(time_it bulwark-ec bulwark_ec)
t_rsa=$(time_it bulwark-rsa bulwark_rsa)
t_seed=$(time_it seed seed_once)
printf '%-55s %8s s\n' "bulwark pki bootstrap (ec:p256, root + intermediate CA)" "$t_ec"
printf '%-55s %8s s\n' "bulwark pki bootstrap (rsa:2048, like the seed's keys)" "$t_rsa"
printf '%-55s %8s s\n' "seed: openssl + keytool (make-seed-keystores.sh)" "$t_seed"
awk -v s="$t_seed" -v e="$t_ec" -v r="$t_rsa" 'BEGIN {
  printf "ratio seed / bulwark: %.1fx (ec:p256), %.1fx (rsa:2048)\n", s / e, s / r }'
