/**
 * `wait_event_interruptible_timeout` / `wait_event_interruptible` over abstract time, for the
 * WAIT ioctl (RFCv2 3/7, `vfio_sdmdev_wait`). Time is ticks from the start of the wait; the
 * device's behaviour during the wait is given up front as a {@link DeviceFuture}, as the
 * spec's `sdmdev.wait` command carries it (`updateAt`).
 *
 * @module
 */

/** What the device does while a process waits: when it next reports an update, and how. */
export interface DeviceFuture {
  /** Ticks from the start of the wait until the device reports an update; -1 for never. */
  readonly at: number;
  /** The device reports the update (the IRQ path: mark the queue updated, wake waiters). */
  post(): void;
}

/** A forever wait nothing will wake: the caller sleeps until a signal (`-ERESTARTSYS`). */
export const ERESTARTSYS = "ERESTARTSYS";

/**
 * Sleeps until `woken()` holds or `timeout` ticks pass (0: no timeout). Returns the ticks
 * left, at least 1, when woken within a bounded wait; 0 on timeout or when a forever wait is
 * woken; {@link ERESTARTSYS} for a forever wait without an update. An update the device
 * reports after a timeout stays pending.
 */
export function waitEventTicks(
  woken: () => boolean,
  timeout: number,
  device: DeviceFuture,
): number | typeof ERESTARTSYS {
  const left = (t: number) => (timeout === 0 ? 0 : Math.max(1, timeout - t));
  if (woken()) return left(0);
  if (device.at < 0) return timeout === 0 ? ERESTARTSYS : 0;
  device.post();
  if (timeout !== 0 && device.at > timeout) return 0;
  return woken() ? left(device.at) : 0;
}
