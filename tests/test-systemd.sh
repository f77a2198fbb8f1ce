#!/bin/bash
# test-systemd.sh: mtastsd serve as systemd sees it, with the real binary.
#   - NOTIFY_SOCKET (a path; then an abstract @name): READY=1 from the main pid once the
#     policy port answers (notify_listen.py fetches a policy the moment READY=1 arrives),
#     with STATUS=serving 2 domains and MAINPID; on SIGHUP RELOADING=1 with MONOTONIC_USEC,
#     then READY=1 STATUS=reloaded; a rejected reload's STATUS names FILE:LINE of the
#     problem and says the previous configuration still serves; STOPPING=1 on SIGTERM;
#     on_change commands do not inherit NOTIFY_SOCKET.
#   - As root with user = nobody: notifications still arrive after the privileges are
#     dropped (the socket sits in a directory nobody cannot enter).
#   - JOURNAL_STREAM naming the device and inode of the file stderr goes to: every line
#     starts with its priority, <6> for the start, ready and access lines, <4> warnings,
#     <3> a rejected reload and its FILE:LINE errors; naming another inode, or unset: no
#     prefix at all.
#   - The start line names the pid; SIGUSR1 logs a status line and SIGUSR2 is ignored: the
#     server keeps serving.
# usage: test-systemd.sh MTASTSD MAKE_CERTS
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mtastsd=$1
make_certs=$2
for tool in curl certtool python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done
listener=$(dirname "${BASH_SOURCE[0]}")/notify_listen.py

make_tmp systemd
"$make_certs" -o "$tmp/certs" a.test b.test >/dev/null
ini=$tmp/mtastsd.ini

# write_ini B_MAX_AGE [SERVER_LINE...]: $ini with a.test (enforce) and b.test (testing,
# max_age B_MAX_AGE) on 127.0.0.1:$port, replaced at once.
write_ini() {
	local max_age=$1 line
	shift
	{
		echo "[server]"
		echo "listen = 127.0.0.1:$port"
		echo "threads = 2"
		for line in "$@"; do
			echo "$line"
		done
		cat <<EOF_INI

[domain a.test]
mode = enforce
mx = mail.a.test
max_age = 604800
cert = certs/mta-sts.a.test.crt
key = certs/mta-sts.a.test.key

[domain b.test]
mode = testing
mx = mx.b.test
max_age = $max_age
cert = certs/mta-sts.b.test.crt
key = certs/mta-sts.b.test.key
EOF_INI
	} >"$ini.new"
	mv -f "$ini.new" "$ini"
}

# start_listener SOCKET: notify_listen.py on SOCKET writing to $notes (fresh).
start_listener() {
	notes=$tmp/notes.$RANDOM
	: >"$notes"
	python3 "$listener" "$1" "$notes" "$port" "$tmp/certs/ca.crt" 2>"$notes.err" &
	kill_at_exit $!
	local deadline=$((SECONDS + 10))
	until grep -qx listening "$notes"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "notify_listen.py did not start: $(cat "$notes.err")"
		sleep 0.05
	done
}

# wait_note REGEX [SECONDS]: waits for a line of $notes after line $note_from matching
# the extended REGEX; note_line is set to it and note_from moves past it.
wait_note() {
	local deadline=$((SECONDS + ${2:-20})) n
	while :; do
		n=$(tail -n +"$((note_from + 1))" "$notes" | grep -nE -m 1 -- "$1" | cut -d: -f1 || true)
		if [ -n "$n" ]; then
			note_from=$((note_from + n))
			note_line=$(sed -n "${note_from}p" "$notes")
			return 0
		fi
		lib_running "$server_pid" || fail "mtastsd exited: $(cat "$server_log")"
		[ "$SECONDS" -lt "$deadline" ] || fail "no notification matching '$1': $(cat "$notes")"
		sleep 0.05
	done
}

# body_file NAME MODE MAX_AGE MX: the expected body of a policy, in $tmp/NAME.
body_file() {
	policy_body "$2" "$3" "$4" >"$tmp/$1"
}

port=$(free_port)

############################################ run 1: a socket path, stderr is "the journal"
cat >"$tmp/hook.sh" <<EOF_HOOK
#!/bin/sh
env >"$tmp/hook.env"
EOF_HOOK
chmod +x "$tmp/hook.sh"
write_ini 86400 "on_change = ./hook.sh"
start_listener "$tmp/notify.sock"
note_from=0
: >"$tmp/log1"
journal=$(stat -c '%d:%i' "$tmp/log1")
start_server "$tmp/log1" env NOTIFY_SOCKET="$tmp/notify.sock" JOURNAL_STREAM="$journal" \
	"$mtastsd" serve -c "$ini"
pid=$server_pid

wait_note 'READY=1'
[ "$note_line" = "pid $pid: READY=1|STATUS=serving 2 domains|MAINPID=$pid" ] ||
	fail "first READY: $note_line"
wait_note '^fetch after READY'
[ "$note_line" = "fetch after READY: HTTP/1.1 200 OK" ] ||
	fail "the policy port did not answer when READY=1 arrived: $note_line"
tail -n +2 "$notes" | head -n 1 | grep -q 'READY=1' ||
	fail "something came before READY=1: $(cat "$notes")"
echo "ok - READY=1 from the main pid, port answering, STATUS and MAINPID"

wait_log "<6>mtastsd: ready" 10
head -n 1 "$tmp/log1" | grep -qE "^<6>mtastsd: mtastsd [0-9.]+ starting, pid $pid, configuration $ini\$" ||
	fail "start line: $(head -n 1 "$tmp/log1")"
echo "ok - the start line names the pid"

deadline=$((SECONDS + 20))
until [ -s "$tmp/hook.env" ]; do
	[ "$SECONDS" -lt "$deadline" ] || fail "on_change did not run: $(cat "$tmp/log1")"
	sleep 0.05
done
sleep 0.2
grep -q '^NOTIFY_SOCKET=' "$tmp/hook.env" && fail "on_change inherited NOTIFY_SOCKET"
grep -q "^JOURNAL_STREAM=$journal\$" "$tmp/hook.env" || fail "on_change lost JOURNAL_STREAM"
echo "ok - on_change does not inherit NOTIFY_SOCKET"

body_file a.body enforce 604800 mail.a.test
fetch a.test "$tmp/a.body"
wait_log "<6>access: " 10

# An accepted reload.
write_ini 172800 "on_change = ./hook.sh"
kill -HUP "$pid"
wait_note 'RELOADING=1'
[[ $note_line =~ ^pid\ $pid:\ RELOADING=1\|MONOTONIC_USEC=([0-9]+)\|STATUS=reloading$ ]] ||
	fail "RELOADING: $note_line"
usec=${BASH_REMATCH[1]}
read -r uptime _ </proc/uptime
diff=$((${uptime%.*} - usec / 1000000))
[ "${diff#-}" -lt 60 ] || fail "MONOTONIC_USEC=$usec is not the monotonic clock (uptime $uptime s)"
wait_note 'READY=1'
[ "$note_line" = "pid $pid: READY=1|STATUS=reloaded: serving 2 domains" ] ||
	fail "READY after the reload: $note_line"
body_file b.body testing 172800 mx.b.test
fetch b.test "$tmp/b.body"
echo "ok - SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 STATUS=reloaded"

# A rejected reload names the first problem.
sed -i '/^\[domain b.test\]/a bogus_key = 1' "$ini"
bad_line=$(grep -n '^bogus_key' "$ini" | cut -d: -f1)
kill -HUP "$pid"
wait_note 'RELOADING=1'
wait_note 'READY=1'
case $note_line in
"pid $pid: READY=1|STATUS=reload rejected: $ini:$bad_line: "*", still serving the previous configuration") ;;
*) fail "READY after a rejected reload: $note_line" ;;
esac
wait_log "<3>mtastsd: reload failed, still serving the previous configuration:" 10
grep -q "^<3>$ini:$bad_line: " "$tmp/log1" || fail "no <3> $ini:$bad_line error: $(cat "$tmp/log1")"
fetch b.test "$tmp/b.body"
echo "ok - a rejected reload: STATUS names $ini:$bad_line, the previous configuration serves"

# SIGUSR1 and SIGUSR2 leave it serving.
from=$(log_size)
kill -USR1 "$pid"
wait_log "<6>mtastsd: SIGUSR1: pid $pid serving 2 domains (0 with a degraded certificate) from $ini since " 10 "$from"
grep -q 'reloads, 1 rejected$' <(tail -c +"$((from + 1))" "$tmp/log1") ||
	fail "SIGUSR1 line: $(tail -c +"$((from + 1))" "$tmp/log1")"
kill -USR2 "$pid"
sleep 0.5
lib_running "$pid" || fail "SIGUSR2 ended the server: $(cat "$tmp/log1")"
kill -USR1 "$pid"
kill -USR2 "$pid"
fetch a.test "$tmp/a.body"
fetch b.test "$tmp/b.body"
lib_running "$pid" || fail "SIGUSR1/SIGUSR2 ended the server"
echo "ok - SIGUSR1 logs a status line, SIGUSR2 is ignored, the server keeps serving"

# Every line has its priority; warnings and errors stand apart from access lines.
if grep -vE '^<[346]>' "$tmp/log1" >"$tmp/unprefixed"; then
	fail "lines without a priority: $(cat "$tmp/unprefixed")"
fi
grep -qE "^<4>$ini:[0-9]+: warning: " "$tmp/log1" || fail "no <4> warning: $(cat "$tmp/log1")"
grep -q '^<6>mtastsd: SIGHUP: reloading' "$tmp/log1" || fail "no <6> reload notice"
grep -E '^<[34]>' "$tmp/log1" | grep -q 'access:' && fail "an access line as a warning or error"
echo "ok - journal priorities: <6> start, ready, access; <4> warnings; <3> the rejected reload"

stop_server
grep -qx "pid $pid: STOPPING=1|STATUS=stopping" "$notes" || fail "no STOPPING=1: $(cat "$notes")"
echo "ok - STOPPING=1 on SIGTERM"

############### run 2: an abstract socket, JOURNAL_STREAM naming another file: no prefix
write_ini 86400
abstract=@mtastsd-test-$$-$RANDOM
start_listener "$abstract"
note_from=0
: >"$tmp/other"
: >"$tmp/log2"
start_server "$tmp/log2" env NOTIFY_SOCKET="$abstract" JOURNAL_STREAM="$(stat -c '%d:%i' "$tmp/other")" \
	"$mtastsd" serve -c "$ini"
pid=$server_pid
wait_note 'READY=1'
[ "$note_line" = "pid $pid: READY=1|STATUS=serving 2 domains|MAINPID=$pid" ] ||
	fail "READY on $abstract: $note_line"
fetch a.test "$tmp/a.body"
wait_log "access: " 10
stop_server
grep -qx "pid $pid: STOPPING=1|STATUS=stopping" "$notes" || fail "no STOPPING=1 on $abstract"
grep -q '^<' "$tmp/log2" && fail "a priority prefix for a stderr that is not the journal: $(cat "$tmp/log2")"
grep -q "^mtastsd: mtastsd [0-9.]* starting, pid $pid," "$tmp/log2" || fail "start line: $(head -n 1 "$tmp/log2")"
grep -qE "^$ini:[0-9]+: warning: " "$tmp/log2" || fail "no warning line: $(cat "$tmp/log2")"
echo "ok - abstract NOTIFY_SOCKET; JOURNAL_STREAM of another file: no prefix"

######################## run 3: no NOTIFY_SOCKET, no JOURNAL_STREAM: the plain log
: >"$tmp/log3"
start_server "$tmp/log3" env -u NOTIFY_SOCKET -u JOURNAL_STREAM "$mtastsd" serve -c "$ini"
wait_log "mtastsd: ready" 10
fetch a.test "$tmp/a.body"
wait_log "access: " 10
stop_server
grep -q '^<' "$tmp/log3" && fail "a priority prefix without JOURNAL_STREAM: $(cat "$tmp/log3")"
echo "ok - without JOURNAL_STREAM or NOTIFY_SOCKET: plain lines, serves and stops"

################ run 4 (root only): notifications after dropping to user = nobody
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	mkdir -m 0700 "$tmp/private"
	write_ini 86400 "user = nobody"
	start_listener "$tmp/private/notify.sock"
	note_from=0
	: >"$tmp/log4"
	start_server "$tmp/log4" env NOTIFY_SOCKET="$tmp/private/notify.sock" "$mtastsd" serve -c "$ini"
	pid=$server_pid
	wait_note 'READY=1'
	[ "$note_line" = "pid $pid: READY=1|STATUS=serving 2 domains|MAINPID=$pid" ] ||
		fail "READY as nobody: $note_line"
	grep -q "mtastsd: running as user nobody" "$tmp/log4" || fail "no drop: $(cat "$tmp/log4")"
	kill -HUP "$pid"
	wait_note 'RELOADING=1'
	wait_note 'READY=1'
	stop_server
	grep -qx "pid $pid: STOPPING=1|STATUS=stopping" "$notes" || fail "no STOPPING=1 as nobody: $(cat "$notes")"
	echo "ok - as root with user = nobody: READY, RELOADING, STOPPING after the drop"
else
	echo "# not root: the privilege drop part did not run"
fi
