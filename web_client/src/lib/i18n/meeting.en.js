// English for the room's meeting basics (speaker, self-view, background blur, time warnings, lobby
// cue), merged over the room catalog. No DOM here.
export default Object.freeze({
  "speaker.label": "Speaker",
  "speaker.default": "System default speaker",
  "speaker.unnamed": "Speaker {n}",
  "speaker.test": "Test speaker",
  "speaker.testing": "Playing a test tone…",
  "speaker.tested": "The test tone has finished. If you heard nothing, turn the volume up or choose another speaker.",
  "speaker.failed": "The test tone could not be played on this speaker.",

  "selfview.minimise": "Minimise my video",
  "selfview.restore": "Show my video",
  "selfview.pill": "My video",

  "blur.on": "Background blurred",
  "blur.off": "Blur background",
  "blur.label": "Background blur",
  "blur.unsupported": "This browser cannot blur the background.",
  "blur.failed": "Background blur could not start; your camera is sent as it is.",
  "blur.modeFace": "Background blurred: the area around your detected face stays sharp.",
  "blur.modeCentre": "Background blurred: the centre of the picture stays sharp, the edges are blurred.",

  "time.remaining": "Remaining",
  "time.overrun": "Over time",
  "time.warn10": "Just so you know: about 10 minutes of the planned time remain.",
  "time.warn5": "Just so you know: about 5 minutes of the planned time remain.",
  "time.warnOver": "The session has gone past its planned time. Please agree with the mediator whether to continue.",
  "time.warnOverMediator": "The session has gone past its planned time. Please tell everyone whether it continues.",

  "lobbycue.title": "({n}) waiting · {title}",
  "lobbycue.sound": "Waiting-room chime",
  "lobbycue.soundOn": "Waiting-room chime: on",
  "lobbycue.soundOff": "Waiting-room chime: off",
});
