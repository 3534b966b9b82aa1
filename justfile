# Bento workshop: build a rootless Linux container in Rust, one namespace at a time.
# Run `just` to see the recipes.

set positional-arguments
set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
[private]
default:
    @just --list --unsorted

# Run step N (0-5) with an optional command: `just step 4 ls /` (default: a shell)
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
    cargo build --quiet --release --package "$name"
    exec "target/release/$name" "$@"

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

# Build the root filesystem for steps 04+ (default: from the host's static busybox)
rootfs *ARGS:
    cargo build --quiet --release --package rootfs-fetch
    target/release/rootfs-fetch "$@"

# Run every test: formatting, clippy, unit and snapshot tests (what CI runs)
test:
    cargo fmt --all -- --check
    cargo clippy --quiet --workspace --all-targets -- --deny warnings
    cargo build --quiet --workspace
    INSTA_UPDATE=no cargo test --quiet --workspace

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
