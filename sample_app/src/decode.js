// Image bytes (a File, Blob or camera frame) to an upright RGB uint8 image, as
// pocketvec.runtime.images.load_image does: EXIF orientation applied, alpha composited on white.
// PNG decodes to the same pixels as Pillow; JPEG decoders may differ by a level (see README).

/** Decode a Blob to {width, height, data: Uint8Array RGB}. */
export async function decodeImage(blob) {
  const options = {
    imageOrientation: "from-image", // EXIF orientation, as ImageOps.exif_transpose
    colorSpaceConversion: "none", // Pillow ignores ICC profiles: so do we
    premultiplyAlpha: "none",
  };
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, options).catch((e) => {
      if (e.name !== "TypeError") throw e; // an older browser that refuses these options
      return createImageBitmap(blob);
    });
  } catch (e) {
    throw new Error(`${blob.name || "image"}: not an image this browser can decode (${e.message})`);
  }
  try {
    return bitmapToRGB(bitmap);
  } finally {
    bitmap.close();
  }
}

/** Any drawable (ImageBitmap, video frame) to RGB, composited on white. */
export function bitmapToRGB(source, width = source.width, height = source.height) {
  const canvas = typeof OffscreenCanvas !== "undefined"
    ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement("canvas"), { width, height });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    data[j] = rgba[i]; data[j + 1] = rgba[i + 1]; data[j + 2] = rgba[i + 2];
  }
  return { width, height, data };
}

/** Hex sha256 of bytes: the identity of an enrolled image (duplicate check), as content_hash. */
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** RGB {width, height, data} -> an opaque ImageData (for a canvas). */
export function toImageData(img) {
  const rgba = new ImageData(img.width, img.height);
  for (let i = 0, j = 0; j < img.data.length; i += 4, j += 3) {
    rgba.data.set(img.data.subarray(j, j + 3), i);
    rgba.data[i + 3] = 255;
  }
  return rgba;
}
