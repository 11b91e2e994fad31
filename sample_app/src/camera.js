// Camera capture: the rear camera when there is one (facingMode "environment").

import { bitmapToRGB } from "./decode.js";

export class Camera {
  constructor(video) {
    this.video = video;
    this.stream = null;
  }

  get running() {
    return this.stream !== null;
  }

  async start() {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("this browser gives no camera access here (it needs https or localhost)");
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 960 } }, audio: false,
    });
    this.video.srcObject = this.stream;
    await this.video.play();
  }

  stop() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  /** The current frame as an RGB image. */
  capture() {
    const { videoWidth: w, videoHeight: h } = this.video;
    if (!w || !h) throw new Error("the camera has no frame yet");
    return bitmapToRGB(this.video, w, h);
  }
}
