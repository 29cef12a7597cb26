/** Binds the runtime's Clock port; unbound, drivers use Node's monotonic clock. */
export const RUNTIME_CLOCK = Symbol('RUNTIME_CLOCK');
