#!/usr/bin/env bash
# The shipped units under a real systemd, installed as their headers tell an administrator to.
#
#   BOX=PATH/systemd-box tests/deploy/units.sh BINARY
#
# Boots systemd in a Debian chroot with BOX, a script that boots one (`up`, `exec CMD...`,
# `install SRC DST`, `down`; its PID 1 has namespaces of its own, so its boot-time cleaning
# never touches this machine; CI passes the one beside the checkout), serves feeds
# and receives webhooks on host loopback, and checks:
#   system unit: active (running) without restarts, an alert through a webhook whose address is
#   a credential, the administrator's status/matches/feeds see the service's database, reload
#   reads an edited config, a broken feed is a warning in the journal, stop ends with
#   Result=success, files root's `search` makes in the state folder stay the service's, a broken
#   config fails the unit at once with its error at priority err;
#   user unit: the same life under a lingering user's manager (`systemctl --user`), with a
#   desktop alert through the user's session bus to a notification daemon (dunst on Xvfb).
# Needs root. Exits non-zero on the first check that fails, with the unit's journal.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
binary=$(realpath "${1:?usage: units.sh BINARY}")
[ -x "${BOX:-}" ] || { echo "units.sh: set BOX to a systemd box script (up, exec, install, down)"; exit 1; }

work=$(mktemp -d)
# The box keeps its journal between runs: read only this run's lines.
since="@$(date +%s)"
peers_pid=
# What a run leaves enabled in the box would start at its next boot: take it away first.
forget_feedwatch() {
  box systemctl disable --now feedwatch >/dev/null 2>&1 || true
  box loginctl disable-linger fwuser >/dev/null 2>&1 || true
  box rm -rf /etc/feedwatch /var/lib/feedwatch /var/lib/private/feedwatch \
    /etc/systemd/system/feedwatch.service /usr/local/bin/feedwatch
  box systemctl daemon-reload
}
cleanup() {
  [ -n "$peers_pid" ] && kill "$peers_pid" 2>/dev/null
  forget_feedwatch >/dev/null 2>&1 || true
  "$BOX" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

box() { "$BOX" exec "$@"; }
step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() {
  printf '   FAILED: %s\n' "$*"
  box journalctl --no-pager --since "$since" -n 60 -u feedwatch 2>/dev/null || true
  box journalctl --no-pager --since "$since" -n 60 _UID="$(box id -u fwuser 2>/dev/null || echo 0)" 2>/dev/null || true
  exit 1
}
# wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds.
wait_for() {
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then ok "$what"; return 0; fi
    sleep 0.2
  done
  fail "$what (waited ${seconds}s)"
}

# ---- the outside world: feeds and a webhook receiver on host loopback ----
mkdir -p "$work/feeds"
feed() { # feed FILE GUID TITLE
  cat >"$work/feeds/$1" <<EOF
<?xml version="1.0"?><rss version="2.0"><channel><title>$1</title><link>http://example.org/</link>
<item><guid>$2</guid><title>$3</title><link>http://example.org/$2</link></item></channel></rss>
EOF
}
feed first.xml deploy-1 "NATO summit opens in the box"
feed second.xml deploy-2 "NATO ministers meet after a reload"
printf 'this is not a feed <<<' >"$work/feeds/broken.xml"
: >"$work/received"
python3 "$here/peers.py" "$work/feeds" "$work/received" "$work/port" &
peers_pid=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
base="http://127.0.0.1:$port"
received() { grep -c "$1" "$work/received"; }

# ---- the box, and the files a checkout of feedwatch holds ----
step "boot systemd in the box"
"$BOX" up
src=/opt/feedwatch-src
"$BOX" install "$binary" "$src/target/release/feedwatch"
for f in "$repo"/systemd/*; do "$BOX" install "$f" "$src/systemd/$(basename "$f")"; done
forget_feedwatch

# The `$` lines of a unit's header, without the build (the binary is already in place).
install_lines() { sed -n 's/^#   \$ //p' "$1" | grep -v '^cargo '; }

# A config for the test: feeds on the host, the rule's webhook address as a credential.
test_config() { # test_config FEED...
  printf '[defaults]\ncron = "*/2 * * * * *"\n'
  for f in "$@"; do printf '\n[[feed]]\nname = "%s"\nurl = "%s/%s"\n' "$f" "$base" "$f"; done
  printf '\n[[rule]]\nname = "nato"\nquery = "NATO"\nnotify = ["hook", "journal"]\n'
  printf '\n[[notifier]]\nname = "journal"\nkind = "stdout"\n'
  printf '\n[[notifier]]\nname = "hook"\nkind = "webhook"\nurl = { credential = "hook-url" }\n'
}

# ============================ system unit ============================
step "system unit: install as its header says"
mapfile -t lines < <(install_lines "$repo/systemd/feedwatch.service")
[ "${#lines[@]}" -ge 2 ] || fail "the unit's header has install lines"
for line in "${lines[@]:0:${#lines[@]}-1}"; do
  echo "   # $line"
  box bash -c "cd $src && $line" || fail "install line: $line"
done
test_config first.xml >"$work/config.toml"
"$BOX" install "$work/config.toml" /etc/feedwatch/config.toml
box chmod 644 /etc/feedwatch/config.toml
echo "$base/hook" >"$work/hook-url"
"$BOX" install "$work/hook-url" /etc/feedwatch/credentials/hook-url
box chmod 600 /etc/feedwatch/credentials/hook-url
last=${lines[${#lines[@]}-1]}
echo "   # $last"
box bash -c "cd $src && $last" || fail "start line: $last"

step "system unit: runs, polls, alerts"
wait_for 20 "active (running)" box bash -c '[ "$(systemctl show -p SubState --value feedwatch)" = running ]'
wait_for 30 "the webhook got the alert" bash -c "[ \"\$(grep -c 'NATO summit opens' $work/received)\" = 1 ]"
[ "$(box systemctl show -p NRestarts --value feedwatch)" = 0 ] || fail "NRestarts=0"
ok "NRestarts=0"

step "system unit: the administrator's commands see the service"
admin() { box /usr/local/bin/feedwatch --config /etc/feedwatch/config.toml "$@"; }
out=$(admin status) || fail "status exits 0 while the service runs: $out"
grep -q "running (pid" <<<"$out" || fail "status says running: $out"
grep -q "/var/lib/feedwatch/feedwatch.db" <<<"$out" || fail "status names the service's database: $out"
ok "status: running, /var/lib/feedwatch/feedwatch.db"
out=$(admin matches) && grep -q "NATO summit opens" <<<"$out" || fail "matches lists the service's alert: $out"
ok "matches lists the alert"
out=$(admin feeds) && grep -q "first.xml" <<<"$out" || fail "feeds lists the service's feed: $out"
ok "feeds lists the feed"
box test ! -e /etc/feedwatch/feedwatch.db || fail "no database appeared beside the config"
ok "no database in /etc/feedwatch"

step "system unit: reload reads the edited config"
test_config first.xml second.xml broken.xml >"$work/config.toml"
"$BOX" install "$work/config.toml" /etc/feedwatch/config.toml
box chmod 644 /etc/feedwatch/config.toml
box systemctl reload feedwatch || fail "systemctl reload"
wait_for 30 "the new feed's alert" bash -c "[ \"\$(grep -c 'NATO ministers meet' $work/received)\" = 1 ]"
[ "$(received 'NATO summit opens')" = 1 ] || fail "the first alert was not sent again"
ok "no alert sent twice"

step "system unit: the journal files lines by priority"
wait_for 30 "the broken feed is a warning" box bash -c \
  "journalctl -u feedwatch --since $since -p warning --no-pager -o cat | grep -q broken.xml"
if box journalctl -u feedwatch --since "$since" -p warning --no-pager -o cat | grep "feedwatch started"; then
  fail "info lines stay out of -p warning"
fi
ok "info lines stay out of -p warning"
[ "$(box systemctl show -p NRestarts --value feedwatch)" = 0 ] || fail "still NRestarts=0"

step "system unit: stop"
box systemctl stop feedwatch
[ "$(box systemctl show -p Result --value feedwatch)" = success ] || fail "Result=success"
ok "Result=success"

step "system unit: what root's commands make in its state folder stays the service's"
# With the service stopped, `search` builds the index itself.
box bash -c 'rm -f /var/lib/feedwatch/feedwatch-search.db*'
out=$(admin search summit) && grep -q "NATO summit opens" <<<"$out" || fail "search finds the stored article: $out"
owner=$(box stat -L -c %u /var/lib/feedwatch)
for file in $(box ls /var/lib/feedwatch/); do
  [ "$(box stat -c %u "/var/lib/feedwatch/$file")" = "$owner" ] || fail "$file belongs to the service (uid $owner)"
done
ok "the search index root built belongs to the service"

step "system unit: a broken config fails at once, with its reason"
printf '[[feed]]\nurl = "%s/first.xml"\nintervall = "5m"\n' "$base" >"$work/config.toml"
"$BOX" install "$work/config.toml" /etc/feedwatch/config.toml
box chmod 644 /etc/feedwatch/config.toml
box systemctl start feedwatch || true
wait_for 20 "the unit failed" box bash -c '[ "$(systemctl show -p ActiveState --value feedwatch)" = failed ]'
sleep 2
[ "$(box systemctl show -p ActiveState --value feedwatch)" = failed ] || fail "no restart after a config error"
[ "$(box systemctl show -p NRestarts --value feedwatch)" = 0 ] || fail "NRestarts=0 after a config error"
ok "no restart"
box journalctl -u feedwatch --since "$since" -p err --no-pager -o cat | grep intervall || fail "the config error at priority err"
ok "the config error is in journalctl -p err"
box systemctl reset-failed feedwatch || true

# ============================ user unit ============================
step "user unit: a lingering user's manager"
if ! box dpkg -s libpam-systemd dbus-user-session dunst xvfb >/dev/null 2>&1; then
  box bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends libpam-systemd dbus-user-session dunst xvfb >/dev/null' \
    || fail "install libpam-systemd, dbus-user-session, dunst and xvfb in the box"
fi
box bash -c 'id fwuser >/dev/null 2>&1 || useradd -m -s /bin/bash fwuser'
uid=$(box id -u fwuser)
box bash -c 'rm -rf ~fwuser/.config/feedwatch ~fwuser/.local/share/feedwatch ~fwuser/.config/systemd'
box loginctl enable-linger fwuser
wait_for 30 "user@$uid.service runs" box systemctl is-active "user@$uid.service"
as_user() { box runuser -u fwuser -- env XDG_RUNTIME_DIR=/run/user/$uid \
  DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus bash -c "cd ~/src && $1"; }
box bash -c "rm -rf ~fwuser/src && cp -r $src ~fwuser/src && chown -R fwuser: ~fwuser/src"
# The user's desktop: an X server and a notification daemon on the session bus, as a graphical
# login would start them. Alerts leave dunst's screen after a second, into its history.
printf '[urgency_normal]\n    timeout = 1\n' >"$work/dunstrc"
"$BOX" install "$work/dunstrc" /home/fwuser/dunstrc
as_user 'systemctl --user stop fw-xvfb fw-dunst 2>/dev/null; systemctl --user reset-failed 2>/dev/null
  systemd-run --user --unit=fw-xvfb Xvfb :99 -nolisten tcp &&
  systemd-run --user --unit=fw-dunst --setenv=DISPLAY=:99 dunst -config ~/dunstrc' >/dev/null 2>&1 \
  || fail "start Xvfb and dunst for the user"
wait_for 20 "dunst answers on the user's bus" as_user 'dunstctl is-paused'
# What `cargo install --locked --path .` leaves: the binary in ~/.cargo/bin.
box runuser -u fwuser -- install -Dm755 "$src/target/release/feedwatch" /home/fwuser/.cargo/bin/feedwatch

step "user unit: install as its header says"
mapfile -t lines < <(install_lines "$repo/systemd/feedwatch-user.service")
for line in "${lines[@]:0:${#lines[@]}-1}"; do
  echo "   # $line"
  as_user "$line" || fail "install line: $line"
done
feed first.xml deploy-user-1 "NATO user service alert"
# The user's config: the webhook address inline (the file is the user's alone) and a desktop alert.
user_config() {
  test_config "$@" | sed -e '/^url = { credential/d' -e 's/^notify = \["hook", "journal"\]/notify = ["hook", "journal", "desk"]/'
  printf 'url = "%s/hook"\n\n[[notifier]]\nname = "desk"\nkind = "desktop"\n' "$base"
}
user_config first.xml >"$work/user-config.toml"
"$BOX" install "$work/user-config.toml" /home/fwuser/.config/feedwatch/config.toml
box chown fwuser: /home/fwuser/.config/feedwatch/config.toml
box chmod 600 /home/fwuser/.config/feedwatch/config.toml
last=${lines[${#lines[@]}-1]}
echo "   # $last"
as_user "$last" || fail "start line: $last"

step "user unit: runs, polls, alerts"
wait_for 20 "active (running)" as_user '[ "$(systemctl --user show -p SubState --value feedwatch)" = running ]'
wait_for 30 "the webhook got the user's alert" bash -c "[ \"\$(grep -c 'NATO user service alert' $work/received)\" = 1 ]"
out=$(as_user '~/.cargo/bin/feedwatch status') || fail "status exits 0: $out"
grep -q "running (pid" <<<"$out" || fail "the user's status sees the service: $out"
grep -q "/home/fwuser/.local/share/feedwatch/feedwatch.db" <<<"$out" || fail "in the user's data folder: $out"
ok "status (no --config): running, ~/.local/share/feedwatch/feedwatch.db"
wait_for 30 "the desktop alert reached dunst" as_user 'dunstctl history | grep -q "NATO user service alert"'

step "user unit: reload and stop"
user_config first.xml second.xml >"$work/user-config.toml"
"$BOX" install "$work/user-config.toml" /home/fwuser/.config/feedwatch/config.toml
box chown fwuser: /home/fwuser/.config/feedwatch/config.toml
as_user 'systemctl --user reload feedwatch' || fail "systemctl --user reload"
wait_for 30 "the new feed's alert" bash -c "[ \"\$(grep -c 'NATO ministers meet' $work/received)\" = 2 ]"
as_user 'systemctl --user stop feedwatch'
[ "$(as_user 'systemctl --user show -p Result --value feedwatch')" = success ] || fail "Result=success"
ok "Result=success"
[ "$(as_user 'systemctl --user show -p NRestarts --value feedwatch')" = 0 ] || fail "NRestarts=0"
ok "NRestarts=0"

printf '\nunits.sh: every check passed\n'
