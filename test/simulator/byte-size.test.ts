import { describe, expect, it } from 'vitest';
import { formatByteSize, parseByteSize } from '../../runtime/simulator/byte-size.ts';
import { MEMLOCK_UNLIMITED } from '../../runtime/contract/types.ts';

describe('byte sizes', () => {
  it('reads binary suffixes, plain digits and unlimited', () => {
    const bytes = (s: string | number): bigint | string => {
      const r = parseByteSize(s);
      return r.ok ? r.bytes : r.message;
    };
    expect(bytes('8G')).toBe(8n << 30n);
    expect(bytes('512M')).toBe(512n << 20n);
    expect(bytes('64KiB')).toBe(64n << 10n);
    expect(bytes('16Gi')).toBe(16n << 30n);
    expect(bytes('1048576')).toBe(1048576n);
    expect(bytes(4096)).toBe(4096n);
    expect(bytes('unlimited')).toBe(MEMLOCK_UNLIMITED);
    expect(bytes('18446744073709551615')).toBe(MEMLOCK_UNLIMITED);
  });

  it('refuses what is not a size, saying what to write', () => {
    for (const bad of ['8X', '1.5G', '-1', '', 'G', '16E', '18446744073709551616']) {
      const r = parseByteSize(bad);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.message).toMatch(/8G|64 bits/);
    }
  });

  it('prints sizes the way it reads them', () => {
    expect(formatByteSize(8n << 30n)).toBe('8G');
    expect(formatByteSize(1536n << 20n)).toBe('1536M');
    expect(formatByteSize(65536n)).toBe('64K');
    expect(formatByteSize(1000n)).toBe('1000');
    expect(formatByteSize(MEMLOCK_UNLIMITED)).toBe('unlimited');
    for (const s of ['8G', '1536M', '64K', '1000', 'unlimited', '3T']) {
      const r = parseByteSize(s);
      expect(r.ok && formatByteSize(r.bytes)).toBe(s);
    }
  });
});
