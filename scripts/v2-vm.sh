#!/usr/bin/env bash
# Boots a Debian 12 VM with a pure cgroup v2 hierarchy (mmdebstrap root, Debian's
# kernel, qemu TCG: KVM does not work on the CI machine) and runs inside it:
#   - the sandbox crate's test suites, as `cargo test` runs them (default test
#     threads), each in a delegated scope (`systemd-run --scope -p Delegate=yes`);
#   - deploy/systemd/runbox.service: `runbox serve` as a unit, /readyz, a Python
#     run through the API;
#   - doctor under a unit without Delegate=yes (must name the fix);
#   - `runbox run` from a cgroup shared with another process (a login shell's).
# While a suite runs, a watcher prints every box process alive for a second or
# more (state, kernel stacks, signal masks; for an init waiting on a futex, the
# code addresses on its stack, named by gdb after the suite).
# Prints the VM's report and exits 0 when every check passed. Slow (about 15-30
# minutes under TCG), so not part of CI.
#
#   scripts/v2-vm.sh [WORKDIR]       (default: $CARGO_TARGET_DIR/v2-vm or target/v2-vm)
#   SUITE=trixie             a Debian 13 VM instead (kernel 6.12, systemd 257), where
#                            memory.peak can be reset and box cgroups are reused
#   KERNEL_PACKAGE=...       another kernel package of the suite
#   V2_SUITES=attacks,live   to run only these sandbox suites (names without the hash)
#   V2_TEST_ARGS=--test-threads=1   arguments for each suite (comma-separated)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
work=${1:-$target/v2-vm}
kernel_package=${KERNEL_PACKAGE:-linux-image-amd64}
suite=${SUITE:-bookworm}
mirror=http://deb.debian.org/debian

for tool in mmdebstrap qemu-system-x86_64 mkfs.ext4 python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install mmdebstrap qemu-system-x86 e2fsprogs python3" >&2; exit 2; }
done

echo "building runbox and the sandbox's test binaries" >&2
(cd "$repo" && cargo build -q -p runbox)
tests=$(cd "$repo" && cargo test -q -p runbox-sandbox --no-run --message-format=json 2>/dev/null \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')

rm -rf "$work"
mkdir -p "$work"
root=$work/root
echo "making the VM's root with mmdebstrap ($kernel_package)" >&2
mmdebstrap --quiet --variant=minbase \
  --include="systemd,systemd-sysv,dbus,udev,$kernel_package,initramfs-tools,gcc,libc6-dev,python3,curl,procps,gdb,e2fsprogs,sqlite3,slirp4netns,nftables,iproute2,isc-dhcp-client,ifupdown,ca-certificates" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  "$suite" "$root" "$mirror"

install -D -m755 "$target/debug/runbox" "$root/usr/local/bin/runbox"
# The launcher program the sandbox's tests start, where they look for it (a
# path fixed at build time).
install -D -m755 "$target/debug/runbox-box-launcher" "$root$target/debug/runbox-box-launcher"
install -D -m644 "$repo/deploy/systemd/runbox.service" "$root/etc/systemd/system/runbox.service"
mkdir -p "$root/opt/runbox-tests/bin"
for t in $tests; do cp "$t" "$root/opt/runbox-tests/bin/"; done
# The attack suite's Debian runtime, where the test binaries look for it (a
# path fixed at build time), so the VM needs no network.
if [ -d "$target/tmp/test-runtimes" ]; then
  mkdir -p "$root$target/tmp"
  cp -a "$target/tmp/test-runtimes" "$root$target/tmp/"
fi
echo "/dev/vda / ext4 rw,relatime 0 1" >"$root/etc/fstab"
# qemu's user network: a default route and DNS, as the network suite needs (it
# reaches nothing beyond the VM: its tests talk to the VM's own addresses). Not
# qemu's default 10.0.2.0/24: that is slirp4netns's subnet inside a box, where
# the VM's own address would then be a neighbour, not the host.
mkdir -p "$root/etc/network"
printf 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet dhcp\n' >"$root/etc/network/interfaces"
echo runbox-v2 >"$root/etc/hostname"

cat >"$root/opt/runbox-tests/check.sh" <<'CHECK'
#!/bin/bash
# Runs inside the VM; every line starting with "V2-CHECK" is read by the host.
set -u
failed=0
report() { echo "V2-CHECK $1 $2"; [ "$1" = PASS ] || failed=1; }
echo "kernel $(uname -r); $(systemctl --version | head -1)"
echo "cgroup: $(stat -fc %T /sys/fs/cgroup) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && report PASS "pure cgroup v2" || report FAIL "pure cgroup v2"

# The kernel's own memory accounting, without runbox: a child's 48 MiB in a box
# cgroup reused three times (memory.peak reset per descriptor on Linux 6.12+),
# then a 200 MiB child against a 100 MiB memory.max.
if systemd-run --quiet --scope -p Delegate=yes python3 /opt/runbox-tests/probe.py >/tmp/probe.log 2>&1; then
  report PASS "kernel: memory.peak and memory.max of a reused cgroup"
else
  report FAIL "kernel: memory.peak and memory.max of a reused cgroup"
fi
sed 's/^/V2-PROBE /' /tmp/probe.log

# The same through runbox: a program touching 48 MiB against a 32 MiB limit
# (the cgroup has room for it: the tmpfs budgets), three times in the CLI's
# lasting slot. Volatile: a newer gcc drops a malloc and memset nothing reads.
cat >/tmp/touch48.c <<'C'
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    volatile char *p = malloc(48 << 20);
    if (!p) return 3;
    for (long i = 0; i < (48L << 20); i += 4096) p[i] = 1;
    pause();
    return p[4096];
}
C
mkdir -p /tmp/touch48 && gcc -O2 -o /tmp/touch48/main /tmp/touch48.c
for round in 1 2 3; do
  out=$(systemd-run --quiet --wait --pipe -p Delegate=yes runbox sandbox --json --memory-limit 32M \
    --wall-time-limit 3s --dir /tmp/touch48:/box -- /box/main 2>&1 | tr -d '\n')
  case "$out" in
    *'"status": "memory_limit_exceeded"'*) report PASS "runbox: 48 MiB against 32 MiB is memory_limit_exceeded (round $round)";;
    *) report FAIL "runbox: 48 MiB against 32 MiB (round $round): $out";;
  esac
done

for t in /opt/runbox-tests/bin/*; do
  name=$(basename "$t")
  # V2_SUITES (words of the kernel command line: runbox.suites=a,b) limits the run.
  suites=$(sed -n 's/.*runbox\.suites=\([^ ]*\).*/\1/p' /proc/cmdline)
  if [ -n "$suites" ] && ! echo ",$suites," | grep -q ",${name%-*},"; then continue; fi
  # What a suite may leave behind on the host, before and after it.
  echo "before $name: $(ls /sys/fs/cgroup | tr '\n' ' ')"
  echo "before $name: $(grep -c . /proc/self/mountinfo) mounts; system.slice: $(ls /sys/fs/cgroup/system.slice 2>&1 | head -3 | tr '\n' ' ')"
  # V2_TEST_ARGS (runbox.testargs=a,b on the kernel command line): arguments for
  # each suite, e.g. --test-threads=1.
  testargs=$(sed -n 's/.*runbox\.testargs=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
  # Every process of a box (a child of the suite's process, below its scope)
  # that lives for seconds is printed once, with its state, its parent's and both
  # kernel stacks: what a box stuck until its wall limit waits for.
  (
    while sleep 0.5; do
      ps -eo pid=,ppid=,stat=,etimes=,comm=,cgroup= | while read -r pid ppid stat age comm cgroup; do
        case "$cgroup" in *run-*.scope/runbox-supervisor) continue;; *run-*.scope/*) ;; *) continue;; esac
        [ "$age" -ge 1 ] && ! grep -qx "$pid" /tmp/told 2>/dev/null || continue
        echo "$pid" >>/tmp/told
        echo "LINGERING $pid ($comm, $stat, ${age}s, $cgroup) parent $ppid: $(ps -o stat=,wchan:30=,comm= -p "$ppid")"
        echo "  wchan: $(cat "/proc/$pid/wchan" 2>/dev/null); stack: $(tr '\n' '|' <"/proc/$pid/stack" 2>/dev/null)"
        echo "  parent stack: $(tr '\n' '|' <"/proc/$ppid/stack" 2>/dev/null)"
        echo "  status: $(grep -E '^(State|TracerPid|SigPnd|ShdPnd|SigBlk|SigCgt)' "/proc/$pid/status" | tr '\n' ' ')"
        # A box's init waiting on a lock (a copy of the supervisor's memory):
        # where in the code, from the debugger.
        if [ "$(cat "/proc/$pid/wchan" 2>/dev/null)" = futex_wait_queue ] && [ "$comm" = runbox-launcher ]; then
          echo "  syscall: $(cat "/proc/$pid/syscall" 2>/dev/null)"
          python3 /opt/runbox-tests/ustack.py "$pid" 2>&1 | head -120 | sed 's/^/  /'
        fi
        for task in /proc/"$pid"/task/*; do
          echo "  thread ${task##*/}: $(cut -d' ' -f3 "$task/stat" 2>/dev/null) $(tr '\n' '|' <"$task/stack" 2>/dev/null)"
        done
      done
    done
  ) >"/tmp/$name.stops" 2>&1 &
  watcher=$!
  # shellcheck disable=SC2086
  if systemd-run --quiet --scope -p Delegate=yes "$t" $testargs >"/tmp/$name.log" 2>&1; then
    report PASS "suite $name: $(grep -E '^test result' "/tmp/$name.log" | tail -1)"
  else
    report FAIL "suite $name"
    # Everything but the passing tests' lines: the panics with their messages.
    grep -v -E '^test .* ok$|^$' "/tmp/$name.log" | head -200
  fi
  kill "$watcher" 2>/dev/null || true
  if [ -s "/tmp/$name.stops" ]; then echo "lingering box processes during $name:"; head -400 "/tmp/$name.stops"; fi
  # The stuck processes' frames, named: one debugger run per file.
  grep -E '^  FRAME ' "/tmp/$name.stops" | awk '{print $3}' | sort -u | while read -r file; do
    grep -E "^  FRAME [^ ]+ $file " "/tmp/$name.stops" | awk '{print $4}' | sort -u | head -200 \
      | sed 's/.*/-ex "echo &: " -ex "info symbol &"/' | xargs timeout 600 gdb -batch -nx "$file" 2>&1 \
      | grep -v 'No symbol matches' | sed "s|^|SYMBOL $file: |" | head -200
  done
  echo "after $name: $(ls /sys/fs/cgroup | tr '\n' ' ')"
  echo "after $name: $(grep -c . /proc/self/mountinfo) mounts; system.slice: $(ls /sys/fs/cgroup/system.slice 2>&1 | head -3 | tr '\n' ' ')"
  grep -E 'cgroup|/run/runbox' /proc/self/mountinfo | head -10
done

cat >/tmp/hello.py <<'PY'
print(6 * 7)
PY
systemctl start runbox.service
for _ in $(seq 120); do curl -fs http://127.0.0.1:2358/healthz >/dev/null && break; sleep 1; done
if curl -fsS http://127.0.0.1:2358/readyz; then report PASS "unit: /readyz"; else report FAIL "unit: /readyz"; journalctl -u runbox -n 30 --no-pager; fi
out=$(curl -fsS http://127.0.0.1:2358/api/v1/execute -H 'content-type: application/json' \
  -d '{"language": "python", "source": "print(6*7)"}')
case "$out" in *'"stdout":"42\n"'*) report PASS "unit: a Python run";; *) report FAIL "unit: a Python run: $out";; esac
# A box's OOM kill must not stop the delegated unit (OOMPolicy=continue).
out=$(curl -fsS http://127.0.0.1:2358/api/v1/execute -H 'content-type: application/json' \
  -d '{"language": "python", "source": "x = bytearray(1 << 31)", "limits": {"memory_kb": 65536}}')
sleep 2
if systemctl is-active --quiet runbox.service; then report PASS "unit survives a box's OOM kill"; else report FAIL "unit stopped after a box's OOM kill: $(systemctl show -p Result runbox.service)"; fi
systemctl stop runbox.service

if systemd-run --quiet --wait --pipe -p Delegate=yes runbox doctor >/tmp/doctor.log 2>&1; then
  report PASS "doctor in a delegated unit"
else
  report FAIL "doctor in a delegated unit"; cat /tmp/doctor.log
fi
if systemd-run --quiet --wait --pipe -p Delegate=no runbox doctor >/tmp/doctor-nd.log 2>&1; then
  report FAIL "doctor in a unit without Delegate=yes said safe"; cat /tmp/doctor-nd.log
elif grep -q "Delegate=yes" /tmp/doctor-nd.log && grep -q "not delegated" /tmp/doctor-nd.log; then
  report PASS "doctor names Delegate=yes in a non-delegated unit"
else
  report FAIL "doctor in a non-delegated unit"; cat /tmp/doctor-nd.log
fi
# A login shell's cgroup holds other processes: runbox asks systemd for a scope.
if systemd-run --quiet --wait --pipe -p Delegate=no sh -c 'sleep 30 & runbox run /tmp/hello.py' >/tmp/shared.log 2>&1 \
   && grep -q '^42$' /tmp/shared.log; then
  report PASS "runbox run from a shared cgroup"
else
  report FAIL "runbox run from a shared cgroup"; cat /tmp/shared.log
fi
echo "V2-CHECK DONE failed=$failed"
CHECK
# Where a stuck process is in user space: its pc and every word of its stack
# that points into executable code, as "FRAME file vaddr" (resolved with gdb
# after the suite, when the process is gone).
cat >"$root/opt/runbox-tests/ustack.py" <<'USTACK'
import sys
pid = sys.argv[1]
fields = open(f"/proc/{pid}/syscall").read().split()
sp, pc = int(fields[-2], 16), int(fields[-1], 16)
maps = []
for line in open(f"/proc/{pid}/maps"):
    parts = line.split()
    lo, hi = (int(x, 16) for x in parts[0].split("-"))
    maps.append((lo, hi, parts[1], int(parts[2], 16), parts[5] if len(parts) > 5 else ""))
def where(addr):
    for lo, hi, perms, off, path in maps:
        if lo <= addr < hi:
            return perms, path, addr - lo + off
    return None
def frame(addr, label):
    w = where(addr)
    if w and "x" in w[0] and w[1]:
        # File offset to ELF virtual address: the first mapping of the file has offset 0.
        base = min(lo - off for lo, hi, perms, off, path in maps if path == w[1])
        print(f"FRAME {label} {w[1]} {addr - base:#x}")
frame(pc, "pc")
stack = where(sp)
top = next(hi for lo, hi, *_ in maps if lo <= sp < hi)
with open(f"/proc/{pid}/mem", "rb") as mem:
    mem.seek(sp)
    data = mem.read(min(top - sp, 65536))
for i in range(0, len(data) - 7, 8):
    frame(int.from_bytes(data[i:i + 8], "little"), f"sp+{i:#x}")
USTACK

cat >"$root/opt/runbox-tests/probe.py" <<'PROBE'
import os, sys
own = open("/proc/self/cgroup").read().strip().split("::")[1]
base = "/sys/fs/cgroup" + own
leaf, box = base + "/probe-self", base + "/probe-box"
os.mkdir(leaf)
open(leaf + "/cgroup.procs", "w").write(str(os.getpid()))
open(base + "/cgroup.subtree_control", "w").write("+memory +pids")
os.mkdir(box)
def put(name, value):
    open(box + "/" + name, "w").write(value)
def get(name):
    return open(box + "/" + name).read().strip()
def stat(key):
    return next(l.split()[1] for l in get("memory.stat").splitlines() if l.split()[0] == key)
def child_touching(size):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w); os.read(r, 1)
        data = b"\x01" * size
        os._exit(0 if data[-1] == 1 else 3)
    os.close(r)
    put("cgroup.procs", str(pid))
    os.write(w, b"g"); os.close(w)
    return os.waitpid(pid, 0)[1]
put("memory.max", str(100 << 20))
if os.path.exists(box + "/memory.swap.max"):
    put("memory.swap.max", "0")
peak = os.open(box + "/memory.peak", os.O_RDWR)
ok = True
for round in range(3):
    os.write(peak, b"reset")
    before = int(get("memory.current"))
    status = child_touching(48 << 20)
    seen = int(os.pread(peak, 64, 0).decode().split()[0])
    print(f"round {round}: exit status {status}, current before {before >> 10} KiB, "
          f"peak on the reset descriptor {seen >> 10} KiB, global peak {int(get('memory.peak')) >> 10} KiB, "
          f"current after {int(get('memory.current')) >> 10} KiB, file {int(stat('file')) >> 10} KiB, "
          f"events {get('memory.events').replace(chr(10), ', ')}")
    ok = ok and status == 0 and seen - before >= 47 << 20
status = child_touching(200 << 20)
print(f"200 MiB against 100 MiB: wait status {status}, events {get('memory.events').replace(chr(10), ', ')}")
ok = ok and os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
os.close(peak)
os.rmdir(box)
sys.exit(0 if ok else 1)
PROBE
chmod +x "$root/opt/runbox-tests/check.sh"
cat >"$root/etc/systemd/system/runbox-v2-check.service" <<'UNIT'
[Unit]
Description=runbox's checks on pure cgroup v2
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/opt/runbox-tests/check.sh
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable runbox-v2-check.service >/dev/null 2>&1
# No serial getty: the console is the report's.
chroot "$root" systemctl mask serial-getty@ttyS0.service >/dev/null 2>&1

kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
echo "making the disk image" >&2
truncate -s 8G "$work/disk.img"
mkfs.ext4 -q -F -d "$root" "$work/disk.img"
rm -rf "$root"

echo "booting (qemu TCG; the console is in $work/console.log)" >&2
timeout 3h qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 4096 \
  -nographic -no-reboot \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 net.ifnames=0 quiet runbox.suites=${V2_SUITES:-} runbox.testargs=${V2_TEST_ARGS:-}" \
  -drive "file=$work/disk.img,format=raw,if=virtio" \
  -nic user,model=virtio-net-pci,net=192.168.76.0/24 \
  >"$work/console.log" 2>&1 || true
rm -f "$work/disk.img"
grep -a -E '^(kernel|cgroup:|V2-CHECK|test .* FAILED|.*panicked)' "$work/console.log" | tr -d '\r'
grep -a -q 'V2-CHECK DONE failed=0' "$work/console.log"
