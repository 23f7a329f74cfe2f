#!/bin/sh
# tests/cluster/run.sh: every test of calypsod shards behind twemproxy, one
# after the other; prints each one's closing count and the sum as the last
# line ("N passed, N failed"). Exit status 0 only when all passed.
#
# Environment: CALYPSOD (the binary, default build/calypsod),
# HIREDIS_CLUSTER (default build/hiredis_cluster), NUTCRACKER (default
# /usr/sbin/nutcracker), CALYPSO_SEED (replays the randomized tests),
# CLUSTER_TESTS (a space-separated subset to run).
dir=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3   # Debian's, which has python3-redis
tests=${CLUSTER_TESTS:-"test_cluster test_failover test_rebalance"}
total_p=0
total_f=0
bad=""
for t in $tests; do
    echo "== cluster $t"
    start=$(date +%s)
    out=$($py "$dir/$t.py" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -z "$line" ]; then
        echo "$t: no closing count (exit status $rc)"
        total_f=$((total_f + 1))
        bad="$bad $t"
        continue
    fi
    p=${line%% passed*}
    f=${line#*passed, }
    f=${f%% failed*}
    echo "$t: $line ($(( $(date +%s) - start )) s)"
    total_p=$((total_p + p))
    total_f=$((total_f + f))
    if [ "$rc" != 0 ] || [ "$f" != 0 ]; then bad="$bad $t"; fi
done
[ -z "$bad" ] || echo "cluster tests that failed:$bad"
echo "$total_p passed, $total_f failed"
[ -z "$bad" ]
