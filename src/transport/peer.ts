// Is a peer address loopback? For THOUGHTGATE_API_OPEN=loopback: only a caller on this host (or
// in this pod's network namespace) is answered without a token. Accepts the spellings uWS
// prints (IPv6 with all eight groups, IPv4-mapped IPv6 on dual-stack sockets) and Node's.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 and ::ffff:127.x.y.z; anything else (or not an address at all) is not. */
export function isLoopbackAddress(address: string): boolean {
  // BlockList checks an IPv4-mapped IPv6 address against the IPv4 rules too
  if (isIPv4(address)) return loopback.check(address, 'ipv4');
  if (isIPv6(address)) return loopback.check(address, 'ipv6');
  return false;
}
