// Chinese for the room's meeting basics (speaker, self-view, background blur, time warnings, lobby
// cue), merged over the room catalog. No DOM here.
export default Object.freeze({
  "speaker.label": "扬声器",
  "speaker.default": "系统默认扬声器",
  "speaker.unnamed": "扬声器 {n}",
  "speaker.test": "测试扬声器",
  "speaker.testing": "正在播放测试音…",
  "speaker.tested": "测试音已播放完毕。如果没有听到声音，请调高音量或选择其他扬声器。",
  "speaker.failed": "无法在此扬声器上播放测试音。",

  "selfview.minimise": "收起我的画面",
  "selfview.restore": "展开我的画面",
  "selfview.pill": "我的画面",

  "blur.on": "背景已虚化",
  "blur.off": "背景虚化",
  "blur.label": "背景虚化",
  "blur.unsupported": "此浏览器无法虚化背景。",
  "blur.failed": "背景虚化未能启动，已发送原始画面。",
  "blur.modeFace": "背景已虚化：检测到的人脸周围保持清晰。",
  "blur.modeCentre": "背景已虚化：画面中央保持清晰，四周虚化。",

  "time.remaining": "剩余时间",
  "time.overrun": "已超时",
  "time.warn10": "温馨提示：距本次调解计划结束还有约 10 分钟。",
  "time.warn5": "温馨提示：距本次调解计划结束还有约 5 分钟，请留意时间。",
  "time.warnOver": "本次调解已超过计划时长。如需继续，请与调解员商定。",
  "time.warnOverMediator": "本次调解已超过计划时长，请告知各方是否继续。",

  "lobbycue.title": "({n}) 等候中 · {title}",
  "lobbycue.sound": "等候提示音",
  "lobbycue.soundOn": "等候提示音：开",
  "lobbycue.soundOff": "等候提示音：关",
});
