// English for the party's case page. No DOM here.
export default Object.freeze({
  "case.title": "My case",
  "case.openTitle": "Open my case",
  "case.openLead": "Open the private receipt link you received when you applied, or paste it below.",
  "case.openLabel": "Receipt link or session link",
  "case.openSubmit": "Open",
  "case.noReceipt": "Not applied yet? Apply for mediation",
  "case.openInvalid": "This is not a valid receipt or session link; copy the whole link and paste it again.",
  "case.badLinkTitle": "This link is not valid",
  "case.badLink": "This link does not open a case: it may have expired or been revoked. Use your latest link, or contact the mediation body.",
  "case.errorTitle": "The case cannot be opened right now",
  "case.forget": "Forget this link on this device",
  "case.details": "Case details",
  "case.yourRole": "You are",
  "case.identity": "Identity check",
  "case.verified": "Verified ({time})",
  "case.notVerified": "Not yet verified",

  "session.confirm": "Confirm this time",
  "session.youConfirmed": "You confirmed this time.",
  "session.awaitingYou": "Please confirm whether you can attend.",
  "session.noneYetReview": "Once the case is accepted, the mediator proposes session times here.",
});
