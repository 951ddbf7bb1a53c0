#!/usr/bin/env bash
# Screenshots of nodenet as a new user meets it, in a real X server (Xvfb, no window
# manager), from a fresh settings folder, at 1920x1080 and 1366x768:
#   first-start-WxH.png   `nodenet sample_projects/digits_mlp.json`, the README's command
#   running-WxH.png       a click on the canvas, Ctrl+R, a few seconds into the run
#   finished-WxH.png      the same run when it has ended
# The run is the MNIST CNN sample (a minute or two on two cores; needs the datasets extra).
#
#   apt-get install xvfb xdotool imagemagick   # once
#   bash docs/screenshots_x11.sh               # writes docs/images/first-run/
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/images/first-run
mkdir -p "$out"
display=:97

shoot() {  # shoot WIDTH HEIGHT
    local size="$1x$2" config pid app
    config=$(mktemp -d)
    Xvfb "$display" -screen 0 "${size}x24" -nolisten tcp &
    pid=$!
    trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' RETURN
    sleep 1
    export DISPLAY=$display XDG_CONFIG_HOME=$config NODENET_RECOVERY_DIR=$config/recovery
    unset QT_QPA_PLATFORM
    nodenet sample_projects/digits_mlp.json &
    app=$!
    xdotool search --sync --name "digits_mlp — nodenet" >/dev/null
    sleep 3
    import -window root "$out/first-start-$size.png"
    kill "$app"
    wait "$app" 2>/dev/null || true

    cp sample_projects/mnist_cnn.json "$config/"  # its weights are written beside it
    nodenet "$config/mnist_cnn.json" &
    app=$!
    local window
    window=$(xdotool search --sync --name "mnist_cnn — nodenet" | head -1)
    sleep 3
    # a click on an empty spot of the canvas, then Ctrl+R there
    read -r x y < <(python3 - "$window" <<'EOF'
import subprocess, sys
geometry = subprocess.run(["xdotool", "getwindowgeometry", "--shell", sys.argv[1]],
                          capture_output=True, text=True).stdout
values = dict(line.split("=") for line in geometry.split())
print(int(values["X"]) + int(values["WIDTH"]) // 2, int(values["Y"]) + 120)
EOF
)
    xdotool mousemove "$x" "$y" click 1
    xdotool key ctrl+r
    sleep 12
    import -window root "$out/running-$size.png"
    sleep 240  # the run stops early after about 15 epochs, well within this
    import -window root "$out/finished-$size.png"
    kill "$app"
    wait "$app" 2>/dev/null || true
}

shoot 1920 1080
shoot 1366 768
