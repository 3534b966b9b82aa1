# Bento workshop: build a rootless Linux container in Rust, one namespace at a time.
# Run `just` to see the recipes.

set positional-arguments
set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
[private]
default:
    @just --list --unsorted

# Install what the workshop needs on Debian/Ubuntu, only what is missing (`just setup --help`)
[no-exit-message]
setup *FLAGS:
    @scripts/setup "$@"

# Run step N (0-12) with an optional command: `just step 4 ls /` (default: a shell)
[no-exit-message]
step N *COMMAND:
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(just _step-dir "$1")
    shift
    name="step-$(basename "$dir")"
    number=$((10#${name:5:2}))
    # Steps 04+ run in a root filesystem: build the default one the first time.
    if (( number >= 4 )) && [[ -z "${BENTO_ROOTFS:-}" && ! -d rootfs ]]; then
        echo "just step: no rootfs/ yet, building it first (just rootfs)" >&2
        just rootfs >&2
    fi
    binary="$(just _build "$name")/$name"
    exec "$binary" "$@"

# Run a step's demo program: `just demo no-fork sh -c 'echo $$'` (a PID namespace without the fork)
[no-exit-message]
demo NAME *COMMAND:
    #!/usr/bin/env bash
    set -euo pipefail
    shopt -s nullglob
    found=(steps/*/src/bin/"$1".rs)
    case "$1" in
        breakout) echo "error: the breakout probe runs inside a container: just breakout 5 (or 6)" >&2; exit 2 ;;
        syscalls) echo "error: the syscalls probe runs inside a container: just syscalls 10 (or 11)" >&2; exit 2 ;;
    esac
    if (( ${#found[@]} != 1 )); then
        echo "error: there is no demo '$1'. The demos are:" >&2
        for demo in steps/*/src/bin/*.rs; do
            [[ "$(basename "$demo")" == @(breakout|syscalls).rs ]] && continue
            echo "  just demo $(basename "$demo" .rs)    ($(echo "$demo" | cut -d/ -f2))" >&2
        done
        echo "  (and the probes: just breakout 5, just breakout 6, just syscalls 10, just syscalls 11)" >&2
        exit 2
    fi
    package="step-$(echo "${found[0]}" | cut -d/ -f2)"
    binary="$(just _build "$package")/$1"
    shift
    exec "$binary" "$@"

# Try the classic chroot escape as root inside step N: step 05 lets it out, step 06 does not
[no-exit-message]
breakout N FILE="/etc/os-release":
    #!/usr/bin/env bash
    set -euo pipefail
    just _step-dir "$1" >/dev/null
    just _probe step-06-pivot-root breakout
    exec just step "$1" /bin/breakout "$2"

# Make, inside step N, each system call that step 11 refuses: step 10 takes them, step 11 does not
[no-exit-message]
syscalls N:
    #!/usr/bin/env bash
    set -euo pipefail
    just _step-dir "$1" >/dev/null
    just _probe step-11-least-privilege syscalls
    exec just step "$1" /bin/syscalls

# Put the static probe NAME of PACKAGE into the rootfs's /bin, where a container runs it
[private]
[no-exit-message]
_probe PACKAGE NAME:
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(just _build "$1")
    if [[ "$dir" == target/release ]]; then
        echo "error: the $2 probe must be a static binary, and this machine cannot link one" >&2
        echo "  hint: install the C library's static archive (libc.a: glibc-static, libc6-dev)" >&2
        exit 1
    fi
    rootfs="${BENTO_ROOTFS:-rootfs}"
    [[ -d "$rootfs" ]] || just rootfs
    # Put the probe inside the container's filesystem, where it will run: under a temporary
    # name first, then renamed, so that a probe running from the same rootfs is not disturbed.
    if ! cmp -s "$dir/$2" "$rootfs/bin/$2"; then
        install -m 755 "$dir/$2" "$rootfs/bin/.$2.$$"
        mv -f "$rootfs/bin/.$2.$$" "$rootfs/bin/$2"
    fi

# Show what step B adds to step A: `just diff 2 3` (or `just diff 3`, the same)
[no-exit-message]
diff A B="":
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "$2" ]]; then
        b=$(just _step-dir "$1")
        a=$(just _step-dir "$(( 10#$1 - 1 ))")
    else
        a=$(just _step-dir "$1")
        b=$(just _step-dir "$2")
    fi
    git diff --no-index --color=auto --ignore-space-change "$a/src/main.rs" "$b/src/main.rs" || [[ $? == 1 ]]

# Write step N yourself: make workbench/NN-name/ from the step, its new lessons left as TODOs (`--reset` starts over)
[no-exit-message]
exercise N *FLAGS:
    #!/usr/bin/env bash
    set -euo pipefail
    exec "$(just _coach)" exercise "$@"

# Build your copy of step N and run the step's own checks on it: what holds, what does not, and why
[no-exit-message]
check N:
    #!/usr/bin/env bash
    set -euo pipefail
    n=$((10#$1))
    # Steps 05 and 06 are checked with the static breakout probe, step 11 with the syscalls
    # probe, as `just test` does.
    if (( n == 5 || n == 6 )); then just _build step-06-pivot-root >/dev/null; fi
    if (( n == 11 )); then just _build step-11-least-privilege >/dev/null; fi
    exec "$(just _coach)" check "$@"

# The next hint for step N, one at a time
[no-exit-message]
hint N:
    #!/usr/bin/env bash
    set -euo pipefail
    exec "$(just _coach)" hint "$@"

# How your copy of step N differs from the step
[no-exit-message]
solution N:
    #!/usr/bin/env bash
    set -euo pipefail
    exec "$(just _coach)" solution "$@"

# Build bento-coach (the learner track's tool) and print its path
[private]
[no-exit-message]
_coach:
    #!/usr/bin/env bash
    set -euo pipefail
    quiet=(--quiet)
    if [[ ! -x target/debug/bento-coach ]]; then
        echo "just: building bento-coach, the learner track's tool (the first time takes a minute or two) ..." >&2
        quiet=()
    fi
    cargo build "${quiet[@]}" --package bento-coach >&2
    echo target/debug/bento-coach

# Build rootfs/ for steps 04+: busybox from Docker Hub, or this host's busybox offline (`just rootfs [SOURCE] [TARGET]`)
rootfs *ARGS:
    cargo build --quiet --release --package rootfs-fetch
    target/release/rootfs-fetch "$@"

# Present the talk with presenterm; its bash snippets run the real steps (ctrl+e)
[no-exit-message]
slides:
    #!/usr/bin/env bash
    set -euo pipefail
    just _need-presenterm
    echo "just slides: building every step, the rootfs and bento's image first, so that nothing waits on stage ..." >&2
    just _prepare-talk
    exec presenterm --config-file slides/config.yaml --enable-snippet-execution slides/bento.md

# Export the talk with every snippet's real output: slides/handout.html (and .pdf with weasyprint)
[no-exit-message]
handout OUTPUT="slides/handout.html":
    #!/usr/bin/env bash
    set -euo pipefail
    html="$1"
    pdf="${html%.html}.pdf"
    if [[ ! -d "$(dirname "$html")" ]]; then
        echo "error: cannot write $html: there is no directory $(dirname "$html")" >&2
        exit 1
    fi
    run=(presenterm --config-file slides/config.yaml --enable-snippet-execution)
    if [[ $(id -u) == 0 ]]; then
        # Show what a learner sees: run the snippets as uid 1000, in a user namespace. There,
        # root's files are uid 1000's, but another user's stay out of reach.
        for dir in . target; do
            if [[ -e "$dir" && "$(stat -c %u "$dir")" != 0 ]]; then
                echo "error: just handout as root runs the snippets as uid 1000 in a user namespace, which cannot write to $(realpath "$dir") (owned by $(stat -c %U "$dir")): run it as $(stat -c %U "$dir"), without sudo" >&2
                exit 1
            fi
        done
        run=(unshare --user --map-user=1000 --map-group=1000 "${run[@]}")
    fi
    just _need-presenterm
    just _prepare-talk
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # presenterm's own words, when it fails: its last line, without its colours.
    export_to() {
        if ! "${run[@]}" "--export-$1" --output "$2" slides/bento.md > "$log" 2>&1; then
            said=$(sed 's/\x1b\[1E/\n/g; s/\x1b\[[0-9;]*[A-Za-z]//g' "$log" \
                | grep -v '^[[:space:]]*$' | tail -n 1)
            echo "error: presenterm could not write $2: $said" >&2
            exit 1
        fi
        echo "just handout: wrote $2"
    }
    export_to html "$html"
    if command -v weasyprint >/dev/null; then
        # From the HTML just written (as presenterm's own --export-pdf does, from its own):
        # the snippets run once, and the PDF shows the very same output.
        if ! weasyprint "$html" "$pdf" > "$log" 2>&1; then
            echo "error: weasyprint could not write $pdf: $(grep -v '^[[:space:]]*$' "$log" | tail -n 1)" >&2
            exit 1
        fi
        echo "just handout: wrote $pdf"
    else
        echo "just handout: wrote no PDF: presenterm needs weasyprint for it (pip install weasyprint)"
    fi

[private]
[no-exit-message]
_need-presenterm:
    #!/usr/bin/env bash
    if ! command -v presenterm >/dev/null; then
        echo "error: the slides need presenterm 0.16+: cargo install --locked presenterm" >&2
        exit 1
    fi

# Check that this machine can run the steps, and say how to fix what it cannot
[no-exit-message]
doctor:
    #!/usr/bin/env bash
    set -euo pipefail
    binary="$(just _build bento-doctor)/bento-doctor"
    exec "$binary"

# Time /bin/true in step 05 against `unshare` and a bare exec, step 11 against step 10, `bento run` against step 10 and runc, podman and containerd with bento against with runc (needs hyperfine)
bench:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v hyperfine >/dev/null; then
        echo "error: just bench needs hyperfine: sudo apt install hyperfine (or cargo install hyperfine)" >&2
        exit 1
    fi
    [[ -d rootfs ]] || just rootfs
    profile="$PWD/bento/src/default-seccomp.json"
    binary="$(just _build step-05-procfs)/step-05-procfs"
    # Run as an ordinary user: as root, as nobody, from copies that nobody can reach.
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    chmod 755 "$work"
    cp "$binary" "$work/step-05-procfs"
    cp -a rootfs "$work/rootfs"
    steps=$(just _build step-10-pty step-11-least-privilege)
    cp "$(just _build bento)/bento" "$steps/step-10-pty" "$steps/step-11-least-privilege" "$work/"
    as=()
    if [[ $(id -u) == 0 ]]; then
        as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
        chown 65534:65534 "$work"
    fi
    cd "$work"
    "${as[@]}" env HOME="$work" BENTO_ROOTFS="$work/rootfs" hyperfine --shell=none \
        --warmup 50 --runs 500 --export-csv "$work/times.csv" \
        --command-name "step 05" "$work/step-05-procfs /bin/true" \
        --command-name "unshare" "unshare --user --map-root-user --uts --pid --fork --mount --root=$work/rootfs --mount-proc /bin/true" \
        --command-name "bare exec" "$work/rootfs/bin/true"
    awk -F, 'NR > 1 { median[$1] = $4 * 1000 }
        END {
            printf "\nmedians: step 05 %.2f ms, unshare %.2f ms, bare exec %.2f ms\n", median["step 05"], median["unshare"], median["bare exec"]
            printf "ratio step 05 / unshare = %.2f (target: <= 1.00)\n", median["step 05"] / median["unshare"]
        }' "$work/times.csv"
    # Bento (image already pulled) against step 10, and against runc on the same root
    # filesystem (runc needs root here: Debian's runc, a full OCI config, a seccomp
    # profile); step 11 (its capabilities, no_new_privs and seccomp filter) against step
    # 10. All with lo alone: --network none (slirp4netns is timed below, through -p).
    "${as[@]}" env BENTO_HOME="$work/bento-home" "$work/bento" pull busybox: >/dev/null
    image=$(echo "$work"/bento-home/images/busybox-*/rootfs)
    "${as[@]}" env HOME="$work" BENTO_HOME="$work/bento-home" BENTO_ROOTFS="$image" \
        TMPDIR="$work" hyperfine --shell=none --warmup 20 --runs 200 \
        --export-csv "$work/bento.csv" \
        --command-name "bento run" "$work/bento run --rm --network none busybox: /bin/true" \
        --command-name "step 10" "$work/step-10-pty /bin/true" \
        --command-name "step 11" "$work/step-11-least-privilege /bin/true"
    runc_median=""
    if [[ $(id -u) == 0 ]] && command -v runc >/dev/null; then
        bundle="$work/bundle"
        mkdir -p "$bundle"
        runc spec --bundle "$bundle"
        python3 - "$bundle/config.json" "$image" "$profile" <<'PY'
    import json, sys
    path, root, profile = sys.argv[1], sys.argv[2], sys.argv[3]
    config = json.load(open(path))
    # With a seccomp filter (bento's default profile, step 11's), compiled by both.
    config["linux"]["seccomp"] = json.load(open(profile))
    config["root"] = {"path": root, "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    # With a cgroup and limits, as every engine's container has.
    config["linux"]["cgroupsPath"] = "/bento-bench"
    config["linux"]["resources"] = {"memory": {"limit": 268435456}, "pids": {"limit": 1024}}
    json.dump(config, open(path, "w"))
    PY
        hyperfine --shell=none --warmup 5 --runs 50 --export-csv "$work/runc.csv" \
            --command-name "runc run" "runc --root $work/runc-state run --bundle $bundle bench" \
            --command-name "bento run --bundle" "$work/bento --root $work/bento-state run --bundle $bundle bench"
        runc_median=$(awk -F, 'NR == 2 { print $4 * 1000 }' "$work/runc.csv")
        # exec into a running container: bento's process joins it from a read-only view of
        # its binary (sealed.rs; as root no copy).
        python3 - "$bundle/config.json" <<'PY'
    import json, sys
    config = json.load(open(sys.argv[1]))
    config["process"]["args"] = ["/bin/sleep", "1000"]
    json.dump(config, open(sys.argv[1], "w"))
    PY
        runc --root "$work/runc-state" run --detach --bundle "$bundle" exec-runc >/dev/null 2>&1 </dev/null
        "$work/bento" --root "$work/bento-state" create --bundle "$bundle" exec-bento >/dev/null 2>&1 </dev/null
        "$work/bento" --root "$work/bento-state" start exec-bento
        hyperfine --shell=none --warmup 5 --runs 50 --export-csv "$work/exec.csv" \
            --command-name "runc exec" "runc --root $work/runc-state exec exec-runc /bin/true" \
            --command-name "bento exec" "$work/bento --root $work/bento-state exec exec-bento /bin/true"
        runc --root "$work/runc-state" delete --force exec-runc
        "$work/bento" --root "$work/bento-state" delete --force exec-bento
        awk -F, 'NR > 1 { median[$1] = $4 * 1000 }
            END {
                printf "\nmedians, as root on one bundle: runc run %.2f ms, bento run --bundle %.2f ms (ratio %.2f, goal <= 0.5)\n",
                    median["runc run"], median["bento run --bundle"], median["bento run --bundle"] / median["runc run"]
            }' "$work/runc.csv"
        awk -F, 'NR > 1 { median[$1] = $4 * 1000 }
            END {
                printf "medians: runc exec %.2f ms, bento exec %.2f ms (ratio %.2f)\n",
                    median["runc exec"], median["bento exec"], median["bento exec"] / median["runc exec"]
            }' "$work/exec.csv"
    fi
    awk -F, -v runc="$runc_median" 'NR > 1 { median[$1] = $4 * 1000 }
        END {
            printf "\nmedians: bento run %.2f ms, step 10 %.2f ms", median["bento run"], median["step 10"]
            if (runc != "") printf ", runc run %.2f ms (ratio bento / runc = %.2f, goal <= 0.5)", runc, median["bento run"] / runc
            else printf " (runc: only as root)"
            printf "\n"
            printf "step 11 %.2f ms: ratio step 11 / step 10 = %.2f (target: <= 1.10)\n", median["step 11"], median["step 11"] / median["step 10"]
        }' "$work/bento.csv"
    # podman with bento as its runtime against podman with runc (as root: Debian's podman
    # with conmon, cgroupfs, a private storage, the same imported root filesystem).
    if [[ $(id -u) == 0 ]] && command -v podman >/dev/null && command -v runc >/dev/null; then
        tar -C "$image" -cf "$work/image.tar" .
        podman=(podman --root "$work/podman" --runroot "$work/podman-run" --tmpdir "$work/podman-tmp"
            --storage-driver vfs --cgroup-manager cgroupfs)
        "${podman[@]}" import --quiet "$work/image.tar" bench >/dev/null
        run=(run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 bench /bin/true)
        hyperfine --warmup 3 --runs 20 --export-csv "$work/podman.csv" \
            --command-name "podman + bento" "${podman[*]} --runtime $work/bento ${run[*]}" \
            --command-name "podman + runc" "${podman[*]} --runtime runc ${run[*]}"
        awk -F, 'NR > 1 { median[$1] = $4 * 1000 }
            END { printf "\nmedians: podman + bento %.0f ms, podman + runc %.0f ms (ratio %.2f)\n",
                median["podman + bento"], median["podman + runc"], median["podman + bento"] / median["podman + runc"] }' \
            "$work/podman.csv"
        "${podman[@]}" rm -af >/dev/null 2>&1 || true
        # containerd's shim (what Kubernetes uses) with bento against with runc: a private
        # containerd, the same image, a memory limit (a cgroup) on both.
        if command -v containerd >/dev/null && command -v ctr >/dev/null; then
            "${podman[@]}" save --quiet --format docker-archive -o "$work/image-archive.tar" bench
            ctd="$work/containerd"
            mkdir -p "$ctd"
            printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/sock"\n[ttrpc]\n  address = "%s/sock.ttrpc"\n' \
                "$ctd" "$ctd" "$ctd" "$ctd" > "$ctd/config.toml"
            containerd --config "$ctd/config.toml" > "$ctd/log" 2>&1 &
            ctd_pid=$!
            until ctr -a "$ctd/sock" version >/dev/null 2>&1; do sleep 0.1; done
            ctr -a "$ctd/sock" image import "$work/image-archive.tar" >/dev/null
            ctr_image=$(ctr -a "$ctd/sock" image ls -q | head -n 1)
            ctr_run="ctr -a $ctd/sock run --rm --memory-limit 268435456"
            hyperfine --warmup 3 --runs 20 --export-csv "$work/ctr.csv" \
                --command-name "ctr + bento" "$ctr_run --runc-binary $work/bento $ctr_image bench /bin/true" \
                --command-name "ctr + runc" "$ctr_run --runc-binary $(command -v runc) $ctr_image bench /bin/true"
            kill "$ctd_pid"; wait "$ctd_pid" 2>/dev/null || true
            grep -o "[^ ]*$ctd[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n 1 umount -l 2>/dev/null || true
            awk -F, 'NR > 1 { median[$1] = $4 * 1000 }
                END { printf "\nmedians: ctr + bento %.0f ms, ctr + runc %.0f ms (ratio %.2f, goal <= 1)\n",
                    median["ctr + bento"], median["ctr + runc"], median["ctr + bento"] / median["ctr + runc"] }' \
                "$work/ctr.csv"
        else
            echo "ctr + bento against ctr + runc: needs containerd (scripts/setup --extras)"
        fi
        "${podman[@]}" rmi -af >/dev/null 2>&1 || true
    else
        echo "podman + bento against podman + runc: only as root, with podman and runc installed"
    fi
    cd - >/dev/null
    just _bench-publish "$work" "$(just _build bento-tests)/load"
    echo
    hyperfine --warmup 3 --runs 30 --command-name "just step 5 true (warm)" "just step 5 true"

# `just bench`'s -p part, in WORK (bento and its busybox image there): requests per second
# to busybox httpd through `bento run -p` against podman's rootless port forwarding
# (rootlessport), both rootless (as nobody when root), the host's 127.0.0.1 only: 50
# connections at once, a new one per request, 3 s a round, rounds taken in turn.
[private]
_bench-publish WORK LOAD:
    #!/usr/bin/env bash
    set -euo pipefail
    work=$1
    cp "$2" "$work/load"
    cd "$work"
    as=()
    user=$(id -un)
    if [[ $(id -u) == 0 ]]; then
        as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
        user=nobody
    fi
    system=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    bento=("${as[@]}" env BENTO_HOME="$work/bento-home" PATH="$system" "$work/bento")
    pod="$work/podman-rootless"
    podman=("${as[@]}" env HOME="$pod" XDG_RUNTIME_DIR="$pod/xdg" PATH="$system" podman
        --root "$pod/storage" --runroot "$pod/run" --storage-driver vfs
        --storage-opt vfs.ignore_chown_errors=true --cgroup-manager cgroupfs --log-level error)
    stop() {
        "${bento[@]}" rm -f bench-web >/dev/null 2>&1 || true
        if [[ -d "$pod/xdg" ]]; then
            "${podman[@]}" rm -f bench-web >/dev/null 2>&1 || true
            # Rootless podman's pause process (it holds the user namespace): by its pid.
            if [[ -s "$pod/xdg/libpod/tmp/pause.pid" ]]; then
                kill "$(cat "$pod/xdg/libpod/tmp/pause.pid")" 2>/dev/null || true
            fi
        fi
    }
    trap stop EXIT
    free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    # Until it answers, at most 10 s (bash's /dev/tcp: no client needed).
    answers() {
        for _ in $(seq 100); do
            if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && grep -q ' 200 ' <&3" 2>/dev/null; then
                return 0
            fi
            sleep 0.1
        done
        return 1
    }
    serve='mkdir -p /www; echo hello > /www/index.html; exec httpd -f -p 80 -h /www'
    echo
    bento_port=$(free_port)
    if ! "${bento[@]}" run -d --name bench-web -p "$bento_port:80" busybox: sh -c "$serve" \
        >/dev/null 2>"$work/bento-error"; then
        echo "bento -p: not measured: $(head -n 1 "$work/bento-error")"
        exit 0
    fi
    answers "$bento_port"
    podman_port=""
    if ! command -v podman >/dev/null || ! command -v slirp4netns >/dev/null; then
        echo "podman's rootless -p: not measured, podman and slirp4netns are not both installed"
    else
        mkdir -p "$pod/xdg"
        chmod 700 "$pod/xdg"
        [[ $(id -u) != 0 ]] || chown -R 65534:65534 "$pod"
        image=$(echo "$work"/bento-home/images/busybox-*/rootfs)
        tar -C "$image" -cf "$pod/image.tar" .
        [[ $(id -u) != 0 ]] || chown 65534:65534 "$pod/image.tar"
        port=$(free_port)
        if "${podman[@]}" import --quiet "$pod/image.tar" bench >/dev/null 2>"$pod/error" \
            && "${podman[@]}" run -d --name bench-web -p "127.0.0.1:$port:80" \
                --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 bench sh -c "$serve" \
                >/dev/null 2>"$pod/error"; then
            answers "$port"
            podman_port=$port
            echo "podman rootless runs here as $user with a single uid mapping (no range for $user in /etc/subuid: none was added)"
        else
            echo "podman rootless cannot run here: $(grep -v '^$' "$pod/error" | tail -n 1)"
            echo "  (it wants a range in /etc/subuid and /etc/subgid for the user, or a single mapping with vfs)"
        fi
    fi
    best_bento=0
    best_podman=0
    # One round: `load`'s line, and the best requests per second so far.
    measure() {
        local said
        said=$("${as[@]}" "$work/load" "$2" 50 3 || true)
        echo "round $round, $1 -p: $said"
        echo "$said" | awk '{ print $6 + 0 }'
    }
    for round in 1 2 3; do
        { read -r line; read -r rps; } < <(measure bento "$bento_port")
        echo "$line"
        if (( rps > best_bento )); then best_bento=$rps; fi
        if [[ -n "$podman_port" ]]; then
            { read -r line; read -r rps; } < <(measure podman "$podman_port")
            echo "$line"
            if (( rps > best_podman )); then best_podman=$rps; fi
        fi
    done
    if [[ -n "$podman_port" ]]; then
        awk -v b="$best_bento" -v p="$best_podman" 'BEGIN {
            printf "best of 3: bento -p %d requests/s, podman rootless -p %d requests/s (ratio bento / podman = %.2f, goal >= 1)\n", b, p, b / p }'
    else
        echo "best of 3: bento -p $best_bento requests/s"
    fi

# Run bento, the capstone runtime: `just bento run --rm busybox ps` (see bento/README.md)
[no-exit-message]
bento *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    binary="$(just _build bento)/bento"
    exec "$binary" "$@"

# Build bento and print its absolute path (for an engine: podman --runtime "$(just bento-path)")
bento-path:
    @echo "$PWD/$(just _build bento)/bento"

# Run every test: formatting, clippy, unit and snapshot tests (what CI runs)
test:
    cargo fmt --all -- --check
    cargo clippy --quiet --workspace --all-targets -- --deny warnings
    just _check-workflow
    cargo build --quiet --workspace
    just _build-steps
    @# The tests' probe runs inside busybox root filesystems: static, like the steps.
    just _build bento-tests >/dev/null
    just _run-tests

# Run every test binary of the workspace, several at once (most tests wait for processes,
# not for the CPU), the longest first; each one's output is kept apart and shown when it is
# done: libtest's summary line, or everything when it failed. Then the doc tests.
[private]
_run-tests:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo test --quiet --workspace --no-run
    logs=$(mktemp -d)
    trap 'rm -rf "$logs"' EXIT
    # "manifest executable" of every test binary, from cargo's JSON messages.
    mapfile -t units < <(cargo test --quiet --workspace --no-run --message-format=json \
        | grep '"test":true' \
        | sed -n 's/.*"manifest_path":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p' \
        | awk '{ long = ($2 ~ /\/(coach|slides|safety|oci|registry|robust|attacks|containerd|pods)-/) ? 0 : 1; print long, $0 }' \
        | sort -k1,1n -s | cut -d' ' -f2-)
    running=0
    slots=$(( $(nproc) * 2 ))
    for unit in "${units[@]}"; do
        read -r manifest executable <<< "$unit"
        name=$(basename "$executable")
        name=${name%-*}
        if (( running >= slots )); then wait -n || true; running=$((running - 1)); fi
        (
            trap - EXIT
            cd "$(dirname "$manifest")"
            log="$logs/$name.$BASHPID"
            start=$SECONDS
            status=0
            INSTA_UPDATE=no INSTA_WORKSPACE_ROOT="{{justfile_directory()}}" "$executable" --quiet \
                > "$log" 2>&1 || status=$?
            echo "$status $((SECONDS - start))" > "$log.status"
        ) &
        running=$((running + 1))
    done
    wait
    failed=()
    for status in "$logs"/*.status; do
        log=${status%.status}
        name=$(basename "$log")
        name=${name%.*}
        read -r code seconds < "$status"
        if [[ "$code" == 0 ]]; then
            # Binaries without tests (every step's, the helpers') say nothing.
            grep -q '^running 0 tests' "$log" \
                || echo "$name (${seconds} s): $(grep '^test result:' "$log" | tail -n 1)"
        else
            echo "---- $name failed:"
            cat "$log"
            failed+=("$name")
        fi
    done
    if ! cargo test --quiet --workspace --doc > "$logs/doc-tests" 2>&1; then
        cat "$logs/doc-tests"
        failed+=(doc-tests)
    fi
    if (( ${#failed[@]} )); then
        echo "error: tests failed in ${failed[*]}" >&2
        exit 1
    fi

# Validate the GitHub workflow template against its schema (check-jsonschema, from PyPI)
[private]
_check-workflow:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v check-jsonschema >/dev/null; then
        check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml
    elif [[ -n "${CI:-}" ]]; then
        echo "error: CI must validate .github/workflows/ci.yml: pip install check-jsonschema" >&2
        exit 1
    else
        echo "SKIPPED: .github/workflows/ci.yml not validated (pip install check-jsonschema)" >&2
    fi

# Build packages for speed and print the directory of their binaries: release, and static
# when glibc's libc.a is there (no dynamic loader: about 0.5 ms less per start)
[private]
[no-exit-message]
_build +PACKAGES:
    #!/usr/bin/env bash
    set -euo pipefail
    # What to build for, worked out once (rustc -vV alone takes ~30 ms through rustup).
    cache=target/.bento-build-target
    if [[ ! -s "$cache" ]]; then
        mkdir -p target
        triple=$(rustc -vV | sed -n 's/^host: //p')
        static=no
        if [[ "$triple" == *-gnu && "$(cc -print-file-name=libc.a 2>/dev/null)" == /* ]]; then
            static=yes
        fi
        echo "$triple $static" > "$cache"
    fi
    read -r triple static < "$cache"
    dir=target/release
    if [[ "$static" == yes ]]; then dir="target/$triple/release"; fi
    packages=()
    quiet=(--quiet)
    for package in "$@"; do
        packages+=(--package "$package")
        # A package not built yet: say so, and show cargo's progress (minutes, the first time).
        if [[ ! -x "$dir/$package" && ${#quiet[@]} -gt 0 ]]; then
            echo "just: building $* (release; the first time takes a few minutes) ..." >&2
            quiet=()
        fi
    done
    if [[ "$static" == yes ]]; then
        # bento links libseccomp: in a static binary, its static archive (libseccomp-dev).
        seccomp=$(cc -print-file-name=libseccomp.a)
        if [[ " $* " == *" bento "* && "$seccomp" != /* ]]; then
            echo "error: bento is built static here, and needs libseccomp.a for it, which this machine lacks" >&2
            echo "  hint: just setup (or: sudo apt install libseccomp-dev)" >&2
            exit 1
        fi
        LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="$(dirname "$seccomp")" \
        RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
            cargo build "${quiet[@]}" --release --target "$triple" "${packages[@]}" >&2
    else
        cargo build "${quiet[@]}" --release "${packages[@]}" >&2
    fi
    echo "$dir"

# Build every step and the rootfs before a talk, so that nothing compiles or downloads on stage
[private]
[no-exit-message]
_prepare-talk:
    #!/usr/bin/env bash
    set -euo pipefail
    just _build-steps
    [[ -n "${BENTO_ROOTFS:-}" || -d rootfs ]] || just rootfs
    # The deck ends with bento: its image is there before the talk starts.
    just bento pull busybox >/dev/null

# Build every step for `just step` (the slides' snippets run them)
[private]
_build-steps:
    @just _build $(cd steps && for step in */; do echo "step-${step%/}"; done) >/dev/null

# The directory of step N (`4` or `04`), or an error listing the steps
[private]
[no-exit-message]
_step-dir N:
    #!/usr/bin/env bash
    set -euo pipefail
    shopt -s nullglob
    found=()
    if [[ "$1" =~ ^[0-9]{1,2}$ ]]; then
        found=(steps/$(printf '%02d' $((10#$1)))-*/)
    fi
    if (( ${#found[@]} != 1 )); then
        echo "error: there is no step '$1'. The steps are:" >&2
        for step in steps/*/; do
            step=${step%/}
            echo "  just step $((10#$(basename "$step" | cut -c1-2)))    $(basename "$step")" >&2
        done
        exit 2
    fi
    echo "${found[0]%/}"
