/**
 * The simulator's only source of randomness: mulberry32, seeded once per run, so a seed
 * replays the same run bit for bit. Math.random is never used under test/simulation.
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    // Mix the seed so that consecutive seeds do not start in correlated states.
    this.state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)];
  }

  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** A non-empty random subset of at least `min` items, in the original order. */
  subset<T>(items: readonly T[], min: number): T[] {
    const size = this.int(Math.min(min, items.length), items.length);
    const chosen = new Set(this.shuffle(items).slice(0, size));
    return items.filter((item) => chosen.has(item));
  }
}
