import { describe, expect, it } from 'vitest';
import { formatByteSize, parseByteSize } from '../../runtime/simulator/byte-size.ts';
import { MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';

const bytes = (s: string | number): bigint | string => {
  const r = parseByteSize(s);
  return r.ok ? r.bytes : r.message;
};

describe('byte sizes are Kubernetes quantities', () => {
  it('reads binary suffixes as powers of two, decimal ones as powers of ten, digits as bytes', () => {
    expect(bytes('16Gi')).toBe(16n << 30n);
    expect(bytes('16G')).toBe(16_000_000_000n);
    expect(bytes('512Mi')).toBe(512n << 20n);
    expect(bytes('512M')).toBe(512_000_000n);
    expect(bytes('64Ki')).toBe(65536n);
    expect(bytes('64k')).toBe(64_000n);
    expect(bytes('1Ti')).toBe(1n << 40n);
    expect(bytes('1T')).toBe(10n ** 12n);
    expect(bytes('15Ei')).toBe(15n << 60n);
    expect(bytes('1.5Gi')).toBe(1536n << 20n);
    expect(bytes('0.5k')).toBe(500n);
    expect(bytes('1048576')).toBe(1048576n);
    expect(bytes(4096)).toBe(4096n);
    expect(bytes('unlimited')).toBe(MEMLOCK_UNLIMITED);
    expect(bytes('18446744073709551615')).toBe(MEMLOCK_UNLIMITED);
  });

  it('refuses ambiguous spellings and names both readings', () => {
    expect(bytes('4GB')).toBe('"4GB" is ambiguous: write 4Gi (binary, 4 × 2^30) or 4G (decimal, 4 × 10^9)');
    expect(bytes('64K')).toBe('"64K" is ambiguous: write 64Ki (binary, 64 × 2^10) or 64k (decimal, 64 × 10^3)');
    expect(bytes('64KB')).toMatch(/ambiguous: write 64Ki .* or 64k /);
    expect(bytes('16g')).toMatch(/ambiguous: write 16Gi .* or 16G /);
    expect(bytes('512m')).toBe(
      '"512m" is ambiguous ("m" means milli in Kubernetes): write 512Mi (binary, 512 × 2^20) or 512M (decimal, 512 × 10^6)',
    );
    expect(bytes('8GiB')).toBe('"8GiB" is not a Kubernetes quantity: write 8Gi (binary, drop the B)');
  });

  it('refuses what is not a size, saying what to write', () => {
    for (const bad of ['8X', '1.5', '0.0001k', '-1', '', 'G', '16Ei', '18446744073709551616', '1e9', '8 Gi']) {
      const r = parseByteSize(bad);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.message, bad).toMatch(/Kubernetes quantity|64 bits|unknown suffix/);
    }
  });

  it('prints sizes in binary form, the way it reads them back', () => {
    expect(formatByteSize(8n << 30n)).toBe('8Gi');
    expect(formatByteSize(1536n << 20n)).toBe('1536Mi');
    expect(formatByteSize(65536n)).toBe('64Ki');
    expect(formatByteSize(16_000_000_000n)).toBe('16000000000');
    expect(formatByteSize(1000n)).toBe('1000');
    expect(formatByteSize(MEMLOCK_UNLIMITED)).toBe('unlimited');
    for (const s of ['8Gi', '1536Mi', '64Ki', '1000', 'unlimited', '3Ti', '0']) {
      const r = parseByteSize(s);
      expect(r.ok && formatByteSize(r.bytes)).toBe(s);
    }
  });
});
