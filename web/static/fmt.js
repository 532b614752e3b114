// Formatting of numbers, rates, sizes, durations and times for display.

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dec1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const dec2 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

// int formats a count with thousands separators ("12,345").
export function int(n) {
  if (n == null || Number.isNaN(Number(n))) return '–';
  return intFmt.format(Number(n));
}

// rate formats a per-second rate: "0", "0.4", "12.5", "1,234".
export function rate(x) {
  x = Number(x) || 0;
  if (x === 0) return '0';
  if (x < 10) return dec2.format(x);
  if (x < 100) return dec1.format(x);
  return intFmt.format(x);
}

// bytes formats a size in B, KiB, MiB, GiB or TiB.
export function bytes(n) {
  n = Number(n) || 0;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? intFmt.format(n) : dec1.format(n)) + ' ' + units[i];
}

// ms formats a duration given in milliseconds: "850 ms", "4.2 s", "3.5 min", "2.1 h", "3.0 d".
export function ms(x) {
  x = Number(x) || 0;
  if (x === 0) return '0 ms';
  if (x < 1) return dec2.format(x) + ' ms';
  if (x < 1000) return dec1.format(x) + ' ms';
  if (x < 60e3) return dec1.format(x / 1e3) + ' s';
  if (x < 3600e3) return dec1.format(x / 60e3) + ' min';
  if (x < 86400e3) return dec1.format(x / 3600e3) + ' h';
  return dec1.format(x / 86400e3) + ' d';
}

// duration formats a protobuf JSON duration ("30s", "1.5s") for display.
export function duration(s) {
  if (s == null || s === '') return '–';
  const secs = parseDuration(s);
  return secs == null ? String(s) : ms(secs * 1000);
}

// parseDuration reads a protobuf JSON duration ("30s") into seconds, or null.
export function parseDuration(s) {
  const m = /^(-?\d+(?:\.\d+)?)s$/.exec(String(s));
  return m ? Number(m[1]) : null;
}

// parseHuman reads "30s", "5m", "1h", "250ms", "2d" or a bare number of
// seconds into seconds, or returns null.
export function parseHuman(s) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/.exec(String(s));
  if (!m) return null;
  const n = Number(m[1]);
  const mul = { ms: 1e-3, s: 1, m: 60, min: 60, h: 3600, d: 86400 }[m[2] || 's'];
  return n * mul;
}

// secondsToHuman turns seconds into the shortest exact "90s" / "5m" / "2h" form.
export function secondsToHuman(secs) {
  if (secs == null) return '';
  if (secs === 0) return '0s';
  if (secs % 86400 === 0) return secs / 86400 + 'd';
  if (secs % 3600 === 0) return secs / 3600 + 'h';
  if (secs % 60 === 0) return secs / 60 + 'm';
  return secs + 's';
}

// time formats a UNIX millisecond time or an RFC 3339 string as local time.
export function time(t) {
  if (!t) return '–';
  const d = typeof t === 'number' ? new Date(t) : new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

// ago formats how long ago a UNIX millisecond time was, relative to now (ms).
export function ago(t, now) {
  if (!t) return '–';
  return ms(Math.max(0, now - t)) + ' ago';
}
