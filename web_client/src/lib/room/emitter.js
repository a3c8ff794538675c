// A minimal event emitter for the room's DOM-free modules (browser and Node alike).

/** @typedef {(...args: any[]) => void} Listener */

/** Listeners by event name; an unhandled "error" does not throw, and a failing listener stops no other. */
export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Listener>>} */
    this._listeners = new Map();
  }

  /**
   * @param {string} name
   * @param {Listener} listener
   * @returns {this}
   */
  on(name, listener) {
    let set = this._listeners.get(name);
    if (!set) {
      set = new Set();
      this._listeners.set(name, set);
    }
    set.add(listener);
    return this;
  }

  /**
   * @param {string} name
   * @param {Listener} listener
   * @returns {this}
   */
  off(name, listener) {
    const set = this._listeners.get(name);
    if (set) set.delete(listener);
    return this;
  }

  /**
   * @param {string} name
   * @param {Listener} listener
   * @returns {this}
   */
  once(name, listener) {
    /** @type {Listener} */
    const wrapper = (...args) => {
      this.off(name, wrapper);
      listener(...args);
    };
    return this.on(name, wrapper);
  }

  /**
   * @param {string} name
   * @param {...any} args
   * @returns {boolean} whether anyone listens to `name`
   */
  emit(name, ...args) {
    const set = this._listeners.get(name);
    if (!set) return false;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        // A faulty listener must not break the protocol machinery or the other listeners.
        if (typeof console !== "undefined") console.error(`listener for ${name} failed`, err);
      }
    }
    return set.size > 0;
  }
}
