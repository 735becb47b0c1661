#!/usr/bin/env bash
# Hot plug a crypto mdev into a running guest, list it, and unplug it, the way a script
# should: with --json and the exit codes of aplaunch's contract.
#
#   examples/hotplug.sh QMP_SOCKET MDEV_UUID [DEVICE_ID]
#
# Exit codes of every `aplaunch qmp` command:
#   0 ok
#   1 refused for a stated reason (host checks failed, the guest already has a vfio-ap
#     device, no AP CPU feature, unknown device id, device already gone)
#   2 usage error or malformed input (bad UUID or id)
#   3 operation failed (QMP socket unreachable, silent, misbehaving, timeout)
# With --json, stdout is exactly one JSON document, also on failure:
#   {"ok":false,"error":{"kind":"already-plugged","message":"...","hint":"..."}}
#
# The JSON is read with jq when it is installed, else with grep/sed (set NO_JQ=1 to force
# that). APLAUNCH names the binary (default: aplaunch on PATH); APLAUNCH_HOST_ROOT is honoured
# by aplaunch itself.
set -uo pipefail

sock=${1:?usage: $0 QMP_SOCKET MDEV_UUID [DEVICE_ID]}
uuid=${2:?usage: $0 QMP_SOCKET MDEV_UUID [DEVICE_ID]}
id=${3:-hostdev0}
aplaunch=${APLAUNCH:-aplaunch}

# field JSON NAME: the first string or array value of "NAME" in the document.
field() {
    if command -v jq >/dev/null 2>&1 && [ -z "${NO_JQ:-}" ]; then
        jq -c -r --arg k "$2" '.. | objects | select(has($k)) | .[$k] | select(. != null)' <<<"$1" | head -n 1
    else
        # Without jq: join the document into one line, then take "NAME": "string" or
        # "NAME": [array] (good enough for aplaunch's output; strings hold no escaped quotes).
        tr -d '\n' <<<"$1" | grep -o "\"$2\": *\(\"[^\"]*\"\|\[[^]]*\]\)" | head -n 1 |
            sed -e 's/^"[^"]*": *//' -e 's/^"\(.*\)"$/\1/' -e 's/  */ /g' -e 's/\[ /[/' -e 's/ \]/]/'
    fi
}

echo "== plug mdev $uuid as $id"
out=$("$aplaunch" --json qmp hotplug --qmp "$sock" --mdev "$uuid" --id "$id" --timeout 5)
rc=$?
case $rc in
    0) echo "plugged; the guest will see: $(field "$out" guest_matrix | tr -d '[]"\n' | tr ',' ' ' | tr -s ' ' | sed 's/^ //')" ;;
    1) echo "refused ($(field "$out" kind)): $(field "$out" message)"
       echo "hint: $(field "$out" hint)"
       [ "$(field "$out" kind)" = already-plugged ] || exit 1 ;;
    2) echo "bad arguments: $(field "$out" message)"; exit 2 ;;
    *) echo "QMP failed ($(field "$out" kind)): $(field "$out" message)"; exit 3 ;;
esac

echo "== list"
out=$("$aplaunch" --json qmp list --qmp "$sock") || { echo "list failed: $(field "$out" message)"; exit 3; }
echo "guest vfio-ap device: $(field "$out" id) -> $(field "$out" sysfsdev)"

echo "== unplug $id"
out=$("$aplaunch" --json qmp unplug --qmp "$sock" --id "$id" --timeout 10)
rc=$?
case $rc in
    0) echo "unplugged $(field "$out" id)" ;;
    1) echo "nothing to unplug: $(field "$out" message)" ;;
    *) echo "unplug failed ($(field "$out" kind)): $(field "$out" message)"; exit "$rc" ;;
esac
