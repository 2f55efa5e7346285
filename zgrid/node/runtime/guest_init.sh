#!/bin/sh
# The first process of a zgrid virtual machine booted on the default guest kernel.
#
# It loads the drivers it carries, reads what the node asks (the 9p share "zconf": a
# config.sh of calls to the functions below, and an authorized_keys), mounts the
# machine's flist (the 9p share "zroot", read-only) under a writable overlay on the
# machine's root volume (the virtio disk with serial "zgrid-root"), mounts its disks at
# their mountpoints, configures its planetary address, and then runs the entrypoint (it
# stays the first process and powers the machine off when the entrypoint ends) or the
# image's own init (which takes over as the first process).
#
# Every line it prints starts with "zgrid-init:"; the node reads "zgrid-init: ready" as
# the machine booted and "zgrid-init: error:" as the reason it did not.

PATH=/bin:/sbin
export PATH

say() { echo "zgrid-init: $*"; }

fail() {
	say "error: $*"
	sync
	poweroff -f
	sleep 10
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

while read -r module; do
	insmod "/lib/modules/$module" 2>/dev/null
done </lib/modules/load.order

# Devices appear as their drivers probe them; wait for what the node attached.
wait_for() {
	tries=0
	while [ ! -e "$1" ] && [ $tries -lt 500 ]; do
		sleep 0.01
		tries=$((tries + 1))
	done
	[ -e "$1" ]
}

disk_by_serial() {
	for block in /sys/block/vd*; do
		[ -e "$block/serial" ] || continue
		if [ "$(cat "$block/serial")" = "$1" ]; then
			echo "/dev/${block##*/}"
			return 0
		fi
	done
	return 1
}

card_by_mac() {
	for card in /sys/class/net/*; do
		if [ "$(cat "$card/address")" = "$1" ]; then
			echo "${card##*/}"
			return 0
		fi
	done
	return 1
}

wait_card() {
	tries=0
	while ! card_by_mac "$1" && [ $tries -lt 500 ]; do
		sleep 0.01
		tries=$((tries + 1))
	done
}

DISKS=""
ENVS=""
HOSTNAME=zmachine
IPV6=""
GATEWAY=""
PLANETARY_MAC=""
PRIVATE=""
ENTRY=""

hostname_is() { HOSTNAME="$1"; }
planetary() { IPV6="$1"; GATEWAY="$2"; PLANETARY_MAC="$3"; }
# private MAC ADDRESS/PREFIX GATEWAY RANGE MTU: a card on a private network
private() { PRIVATE="$PRIVATE$1 $2 $3 $4 $5
"; }
disk() { DISKS="$DISKS $1"; eval "MOUNTPOINT_$1=\$2"; }
variable() { ENVS="$ENVS $1"; eval "VALUE_$1=\$2"; }
entrypoint() { ENTRY=yes; }

mkdir -p /zconf /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro zconf /zconf ||
	fail "the node's configuration share (9p tag zconf) cannot be mounted"
# config.sh also sets the positional parameters to the entrypoint's argv
. /zconf/config.sh

tries=0
while ! root=$(disk_by_serial zgrid-root) && [ $tries -lt 500 ]; do
	sleep 0.01
	tries=$((tries + 1))
done
[ -n "$root" ] || fail "the root volume (virtio disk zgrid-root) is not attached"
mount -t ext4 "$root" /rw || fail "the root volume $root cannot be mounted"
mkdir -p /rw/upper /rw/work
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose zroot /lower ||
	fail "the flist (9p tag zroot) cannot be mounted"
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
	fail "the overlay of the flist on the root volume cannot be mounted"

for name in $DISKS; do
	eval "target=\$MOUNTPOINT_$name"
	tries=0
	while ! device=$(disk_by_serial "$name") && [ $tries -lt 500 ]; do
		sleep 0.01
		tries=$((tries + 1))
	done
	[ -n "$device" ] || fail "disk $name is not attached"
	mkdir -p "/newroot$target" || fail "cannot make the mountpoint $target of disk $name"
	mount -t ext4 "$device" "/newroot$target" || fail "disk $name cannot be mounted at $target"
done

hostname "$HOSTNAME"
echo "$HOSTNAME" >/newroot/etc/hostname 2>/dev/null
ip link set lo up
card=""
if [ -n "$IPV6" ]; then
	if [ -n "$PLANETARY_MAC" ]; then
		card=$(wait_card "$PLANETARY_MAC")
	else
		wait_for /sys/class/net/eth0 && card=eth0
	fi
	[ -n "$card" ] || fail "the planetary network card did not appear"
	echo 0 >"/proc/sys/net/ipv6/conf/$card/accept_dad"
	ip link set "$card" up
	ip -6 addr add "$IPV6/128" dev "$card" || fail "cannot give $card the address $IPV6"
	ip -6 route add 200::/7 via "$GATEWAY" dev "$card" ||
		fail "cannot route 200::/7 via $GATEWAY"
fi
while read -r mac address gateway range mtu; do
	[ -n "$mac" ] || continue
	card=$(wait_card "$mac")
	[ -n "$card" ] || fail "the private network card $mac did not appear"
	ip link set "$card" mtu "$mtu" up
	ip addr add "$address" dev "$card" || fail "cannot give $card the address $address"
	ip route replace "$range" via "$gateway" dev "$card" ||
		fail "cannot route $range via $gateway"
done <<EOF
$PRIVATE
EOF

if [ -s /zconf/authorized_keys ]; then
	mkdir -p /newroot/root/.ssh
	chmod 700 /newroot/root/.ssh
	cat /zconf/authorized_keys >/newroot/root/.ssh/authorized_keys
	chmod 600 /newroot/root/.ssh/authorized_keys
fi

umount /zconf
for fs in proc sys dev; do
	mkdir -p "/newroot/$fs"
	mount --move "/$fs" "/newroot/$fs"
done

if [ -z "$ENTRY" ]; then
	[ -x /newroot/sbin/init ] || [ -L /newroot/sbin/init ] || fail "the flist has no /sbin/init"
	say "ready (the image's /sbin/init)"
	exec switch_root /newroot /sbin/init
fi

# What an image's init would mount and programs expect: terminals (an SSH login) and shm.
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
TERM=linux
export PATH HOME TERM
for name in $ENVS; do
	eval "export $name=\"\$VALUE_$name\""
done
say "ready"
chroot /newroot "$@" </dev/console >/dev/console 2>&1 &
child=$!
wait $child
code=$?
say "the entrypoint exited with code $code"
sync
poweroff -f
