#!/usr/bin/env bash
# Runs cases of the `overhead` bench in N fresh processes and prints, for each case, the
# median, least and greatest of its per-process figures (time per call).
#
# Every process draws its own stack and heap placement, which moves a success-path figure by a
# nanosecond or more (see docs/PERFORMANCE.md), so one criterion run compares one draw of each
# case. The median over many processes compares the code.
#
#   benches/processes.sh [N] [FILTER]
#
# N defaults to 15 (an even N reports the lower median). FILTER is a criterion filter, by
# default the ready-body cases of the direct call, the annotated fn and the two hand loops,
# boxed and on the stack.
set -euo pipefail
n=${1:-15}
filter=${2:-'(direct|llm_retry|hand_written|hand_written_helper)/ready'}
bin=$(cargo bench --bench overhead --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p')

for _ in $(seq "$n"); do
    # A case's name and its figures may share a line or take two.
    "$bin" --bench --warm-up-time 0.5 --measurement-time 1 "$filter" 2>/dev/null |
        awk '/^success_path[^ ]*$/ { name = $1 }
             /^success_path[^ ]* +time:/ { print $1, $5, $6; next }
             /^ +time:/ { print name, $4, $5 }'
done |
    sort -k1,1 -k2,2g |
    awk 'function flush() { if (k) printf "%-50s median %7.2f  min %7.2f  max %7.2f %s  (n = %d)\n", name, v[int((k + 1) / 2)], v[1], v[k], unit, k }
         $1 != name { flush(); name = $1; unit = $3; k = 0 }
         { v[++k] = $2 }
         END { flush() }'
