// CPU time and resident memory of a process and all its descendants, read from /proc (Linux). Where /proc is
// missing the caller falls back to what the process reports about itself over IPC.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const PROC_AVAILABLE = existsSync('/proc/self/stat');

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface Stat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly ticks: number;
  /** stime (kernel) alone, in clock ticks. */
  readonly systemTicks: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), systemTicks: Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** The pid and every live descendant's pid. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(stat.pid);
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

export interface CpuMicros {
  /** User + system. */
  readonly total: number;
  /** System (kernel) alone: syscalls, and on loopback the network stack's work for both ends of each write. */
  readonly system: number;
}

/** User + system CPU of the tree, in microseconds. */
export function treeCpuMicros(root: number): CpuMicros {
  let ticks = 0;
  let systemTicks = 0;
  for (const pid of processTree(root)) {
    const stat = readStat(pid);
    ticks += stat?.ticks ?? 0;
    systemTicks += stat?.systemTicks ?? 0;
  }
  const perTick = 1_000_000 / clockTicks();
  return { total: ticks * perTick, system: systemTicks * perTick };
}

/** Resident set size of the tree (VmRSS summed), in bytes. */
export function treeRssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) kb += Number(match[1]);
    } catch {
      // The process went away between listing and reading.
    }
  }
  return kb * 1024;
}

/**
 * How many of the process's open descriptors are TCP connections to `port` (the upstream, in the soak): read from
 * /proc/<pid>/net/tcp{,6} (socket inode by remote port) and /proc/<pid>/fd (socket:[inode] links).
 */
export function tcpConnectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields: sl, local_address, rem_address, st, …, inode (index 9); st 01 is ESTABLISHED.
      if (fields.length > 9 && fields[2]!.endsWith(`:${hexPort}`) && fields[3] === '01') inodes.add(fields[9]!);
    }
  }
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) count++;
    } catch {
      // closed between listing and reading
    }
  }
  return count;
}
