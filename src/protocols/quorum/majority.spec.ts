import { describe, expect, it } from 'vitest';
import { InvariantError } from '../common/assert';
import { acceptorCount, faultsTolerated, hasQuorum, majority } from './majority';

describe('majority', () => {
  it('is floor(n/2)+1', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(majority)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  it('makes any two quorums of the same membership intersect', () => {
    for (let n = 1; n <= 9; n++) expect(2 * majority(n)).toBeGreaterThan(n);
  });

  it('rejects an empty or fractional membership', () => {
    expect(() => majority(0)).toThrow(InvariantError);
    expect(() => majority(2.5)).toThrow(InvariantError);
  });
});

describe('acceptorCount and faultsTolerated', () => {
  it('uses 2F+1 acceptors to survive F crashes', () => {
    expect([0, 1, 2, 3].map(acceptorCount)).toEqual([1, 3, 5, 7]);
    for (let f = 0; f <= 4; f++) expect(faultsTolerated(acceptorCount(f))).toBe(f);
  });

  it('gains nothing from an even acceptor count', () => {
    expect(faultsTolerated(4)).toBe(1);
    expect(faultsTolerated(2)).toBe(0);
  });
});

describe('hasQuorum', () => {
  const members = ['a', 'b', 'c'];

  it('needs a strict majority of distinct members', () => {
    expect(hasQuorum(['a'], members)).toBe(false);
    expect(hasQuorum(['a', 'a'], members)).toBe(false);
    expect(hasQuorum(['a', 'c'], members)).toBe(true);
  });

  it('ignores voters that are not members', () => {
    expect(hasQuorum(['a', 'x', 'y'], members)).toBe(false);
  });
});
