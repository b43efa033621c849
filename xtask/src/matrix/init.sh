#!/bin/busybox sh
# /init of the kernel-matrix guest (`cargo xtask matrix`): mounts what the tests need, runs
# every test binary of /tests.list with the arguments in /tests.args, writing their output
# and then the kernel log to the second serial port, and powers off. Progress goes to the
# console (the first serial port).
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s
export PATH=/usr/bin:/usr/sbin:/bin:/sbin HOME=/root RUST_BACKTRACE=0 TRACER_TEST_NO_SKIP=1
# /tmp stays the initramfs's own (in memory already): the test binaries may have been built
# below /tmp, at the paths they are placed at here.
# The OOM tests make memory cgroups: the unified hierarchy with the memory controller.
mount -t cgroup2 cgroup2 /sys/fs/cgroup && echo +memory > /sys/fs/cgroup/cgroup.subtree_control
# The metrics tests serve and scrape on loopback.
ip link set lo up
echo "KMATRIX init $(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"
# Only asked whether the guest boots (is KVM usable here?).
grep -q kmatrix.probe /proc/cmdline && poweroff -f
out=/dev/ttyS1
args=$(cat /tests.args)
cd /tmp
while read -r name bin; do
  echo "KMATRIX running $name uptime=$(cut -d' ' -f1 /proc/uptime)"
  echo "KMATRIX begin $name" > $out
  timeout -s KILL 1200 "$bin" --test-threads=1 $args > $out 2>&1
  echo "KMATRIX end $name rc=$?" > $out
done < /tests.list
echo "KMATRIX dmesg" > $out
dmesg > $out
echo "KMATRIX done" > $out
echo "KMATRIX done uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
