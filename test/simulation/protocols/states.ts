/** Volatile core states of one protocol, per node, transaction and role; a crash empties a node. */
export class StateTable<S> {
  private readonly byNode = new Map<string, Map<string, S>>();

  get(node: string, txnId: string, role: string): S | undefined {
    return this.byNode.get(node)?.get(`${txnId}|${role}`);
  }

  set(node: string, txnId: string, role: string, state: S): void {
    let table = this.byNode.get(node);
    if (!table) this.byNode.set(node, (table = new Map()));
    table.set(`${txnId}|${role}`, state);
  }

  has(node: string, txnId: string): boolean {
    const table = this.byNode.get(node);
    if (!table) return false;
    for (const k of table.keys()) if (k.startsWith(`${txnId}|`)) return true;
    return false;
  }

  forget(node: string): void {
    this.byNode.delete(node);
  }
}
