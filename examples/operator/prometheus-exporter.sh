#!/bin/sh
# prometheus-exporter.sh — turn `dreamdb --json` reports into Prometheus
# metrics for the node_exporter textfile collector.
#
# Policy: DreamDB emits signals, the operator decides what to alert on.
# This script only converts; suggested alerts (in your rules file):
#   dreamdb_verify_bad_objects > 0                      page
#   dreamdb_verify_exit_status == 4                     page
#   dreamdb_gc_dry_run_deleted_bytes > 500e9            ticket (GC is behind)
#   time() - dreamdb_exporter_last_run_seconds > 86400  ticket (exporter stuck)
#
# Mechanism: run it from cron (e.g. hourly) with DREAMDB_BACKEND and the
# AWS_* credentials in the environment; it writes
# $TEXTFILE_DIR/dreamdb.prom atomically (write to a temp file, rename).
# Needs jq. `gc --dry-run` deletes nothing: it measures what a GC would
# reclaim with the same retention as gc-cron.yaml.
# The index-balance metrics come from ada-ivf-status (DREAMDB_IVF_FIELD set).
set -u

TEXTFILE_DIR=${TEXTFILE_DIR:-/var/lib/node_exporter/textfile_collector}
KEEP_SINCE=${KEEP_SINCE:-7d}
KEEP_MANIFESTS=${KEEP_MANIFESTS:-30}
out="$TEXTFILE_DIR/dreamdb.prom"
tmp="$out.$$"
trap 'rm -f "$tmp"' EXIT

metric() { # name help value
    printf '# HELP %s %s\n# TYPE %s gauge\n%s %s\n' "$1" "$2" "$1" "$1" "$3" >>"$tmp"
}

: >"$tmp"

verify_json=$(dreamdb --quiet --json verify --max-depth "${VERIFY_MAX_DEPTH:-0}")
verify_status=$?
metric dreamdb_verify_exit_status "Exit status of dreamdb verify (0 clean, 4 damaged)" "$verify_status"
if [ "$verify_status" -eq 0 ] || [ "$verify_status" -eq 4 ]; then
    metric dreamdb_verify_objects_checked "Objects checked by verify" \
        "$(printf '%s' "$verify_json" | jq '.objects_checked')"
    metric dreamdb_verify_bad_objects "Damaged objects found by verify" \
        "$(printf '%s' "$verify_json" | jq '.bad_objects')"
    metric dreamdb_verify_bad_refs "Unreadable refs or tags" \
        "$(printf '%s' "$verify_json" | jq '.bad_refs | length')"
fi

gc_json=$(dreamdb --quiet --json gc --dry-run --keep-since "$KEEP_SINCE" --keep-manifests "$KEEP_MANIFESTS")
gc_status=$?
metric dreamdb_gc_dry_run_exit_status "Exit status of dreamdb gc --dry-run" "$gc_status"
if [ "$gc_status" -eq 0 ]; then
    for field in datasets refs tags retained_manifests marked_objects listed_objects kept_young; do
        metric "dreamdb_gc_$field" "dreamdb gc --dry-run: $field" \
            "$(printf '%s' "$gc_json" | jq ".$field")"
    done
    metric dreamdb_gc_dry_run_deleted_objects "Objects a GC would delete now" \
        "$(printf '%s' "$gc_json" | jq '.deleted_objects')"
    metric dreamdb_gc_dry_run_deleted_bytes "Bytes a GC would reclaim now" \
        "$(printf '%s' "$gc_json" | jq '.bytes_deleted')"
fi

# Index balance, when the binary has the spatial verbs (exit 2 = unknown verb).
if [ -n "${DREAMDB_IVF_FIELD:-}" ]; then
    status_json=$(dreamdb --quiet --json ada-ivf-status --field "$DREAMDB_IVF_FIELD")
    if [ $? -eq 0 ]; then
        metric dreamdb_ivf_imbalance "Coefficient of variation of IVF cell sizes" \
            "$(printf '%s' "$status_json" | jq '.imbalance')"
        metric dreamdb_ivf_cells "IVF cells (k)" "$(printf '%s' "$status_json" | jq '.k')"
    fi
fi

metric dreamdb_exporter_last_run_seconds "Unix time of the last exporter run" "$(date +%s)"
mv "$tmp" "$out"
trap - EXIT
