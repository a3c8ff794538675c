// Background blur, one frame at a time, without a segmentation model (none can be bundled here):
// the whole picture is blurred, then a region that a person on a call occupies is drawn again sharp
// over it. That region is the detected face grown to head and shoulders when the browser can detect
// faces, else a fixed ellipse in the centre of the picture (where the camera is usually pointed).
// No DOM here: the caller passes its canvas contexts.

/**
 * @typedef {object} Region An ellipse kept sharp, in pixels of the frame.
 * @property {number} cx
 * @property {number} cy
 * @property {number} rx
 * @property {number} ry
 */

/** @typedef {{x: number, y: number, width: number, height: number}} Box */
/** @typedef {CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D} Context2D */
/** @typedef {CanvasImageSource} FrameSource */

// The blurred background is the frame drawn at 1/SHRINK of its size and stretched back in two
// bilinear steps (through 1/MID of its size), which smooths it like a wide blur for the cost of two
// small copies. (A canvas filter blur over the whole frame cost more than the rest together on a
// CPU: docs/performance.md.)
export const SHRINK = 12;
export const MID = 3;

// Frames wider than this are processed, and sent, at this width: a blurred 720p camera is sent as
// 960x540, bounding the cost per frame (docs/performance.md).
export const MAX_WIDTH = 960;

/**
 * The size a frame of width x height is processed and sent at, and its scale (at most 1).
 * @param {number} width
 * @param {number} height
 */
export function processedSize(width, height) {
  const scale = width > MAX_WIDTH ? MAX_WIDTH / width : 1;
  return { width: Math.round(width * scale), height: Math.round(height * scale), scale };
}

/**
 * The sizes of the two scratch canvases for a frame of width x height.
 * @param {number} width
 * @param {number} height
 */
export function scratchSizes(width, height) {
  return {
    small: { width: Math.max(1, Math.ceil(width / SHRINK)), height: Math.max(1, Math.ceil(height / SHRINK)) },
    mid: { width: Math.max(1, Math.ceil(width / MID)), height: Math.max(1, Math.ceil(height / MID)) },
  };
}

/**
 * The centre ellipse kept sharp without face detection: a head-and-shoulders sized area, a little
 * below the middle, as a person sits before a laptop or holds a phone.
 * @param {number} width
 * @param {number} height
 * @returns {Region}
 */
export function centreRegion(width, height) {
  return { cx: width / 2, cy: height * 0.56, rx: width * 0.26, ry: height * 0.46 };
}

/**
 * The sharp region around a detected face: the face box widened to the shoulders and reaching down
 * to the bottom of the picture.
 * @param {Box} face
 * @param {number} width
 * @param {number} height
 * @returns {Region}
 */
export function faceRegion(face, width, height) {
  const cx = face.x + face.width / 2;
  const top = Math.max(0, face.y - face.height * 0.45);
  const bottom = height;
  const rx = Math.min(width / 2, face.width * 1.35);
  return { cx, cy: (top + bottom) / 2, rx, ry: (bottom - top) / 2 };
}

/**
 * Move `previous` a part of the way towards `next`, so the sharp area does not jump between detections.
 * @param {Region | null} previous
 * @param {Region} next
 * @param {number} [weight] of the new value, 0..1
 * @returns {Region}
 */
export function smoothRegion(previous, next, weight = 0.35) {
  if (!previous) return next;
  /** @param {number} a @param {number} b */
  const mix = (a, b) => a + (b - a) * weight;
  return { cx: mix(previous.cx, next.cx), cy: mix(previous.cy, next.cy), rx: mix(previous.rx, next.rx), ry: mix(previous.ry, next.ry) };
}

/**
 * Draw `source` (width x height) into `out` with everything outside `region` blurred. `small` and
 * `mid` are scratch contexts of the sizes `scratchSizes` gives.
 * @param {Context2D} out
 * @param {{small: Context2D, mid: Context2D}} scratch
 * @param {FrameSource} source
 * @param {number} width
 * @param {number} height
 * @param {Region} region
 */
export function drawBlurred(out, { small, mid }, source, width, height, region) {
  const sizes = scratchSizes(width, height);
  for (const ctx of [small, mid, out]) {
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "low";
  }
  small.drawImage(source, 0, 0, sizes.small.width, sizes.small.height);
  mid.drawImage(small.canvas, 0, 0, sizes.small.width, sizes.small.height, 0, 0, sizes.mid.width, sizes.mid.height);
  out.save();
  out.drawImage(mid.canvas, 0, 0, sizes.mid.width, sizes.mid.height, 0, 0, width, height);
  out.beginPath();
  out.ellipse(region.cx, region.cy, Math.max(1, region.rx), Math.max(1, region.ry), 0, 0, Math.PI * 2);
  out.clip();
  out.drawImage(source, 0, 0, width, height);
  out.restore();
}
