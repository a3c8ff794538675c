// Simplified Chinese (the default) for the party's case page. No DOM here.
export default Object.freeze({
  "case.title": "我的案件",
  "case.openTitle": "查看我的案件",
  "case.openLead": "请打开申请时获得的私人回执链接，或把它粘贴到下面。",
  "case.openLabel": "回执链接或参会链接",
  "case.openSubmit": "打开",
  "case.noReceipt": "还没有申请？申请调解",
  "case.openInvalid": "这不是有效的回执链接或参会链接，请完整复制后粘贴。",
  "case.badLinkTitle": "链接无效或已过期",
  "case.badLink": "此链接无法打开案件：它可能已过期或被撤销。请使用最新的链接，或联系调解机构。",
  "case.errorTitle": "暂时无法打开案件",
  "case.forget": "在此设备上忘记此链接",
  "case.details": "案件信息",
  "case.yourRole": "您的身份",
  "case.identity": "身份核验",
  "case.verified": "已核验（{time}）",
  "case.notVerified": "尚未核验",

  "session.confirm": "确认此时间",
  "session.youConfirmed": "您已确认此时间。",
  "session.awaitingYou": "请确认您能否参加。",
  "session.noneYetReview": "案件受理后，调解员会在这里提议会谈时间。",
});
