// The page's verifier reports each gap a verified transcript names exactly as the offline tool
// does (tests/fixtures/gaps.json; tests/recording/compliance/test_gaps.py reads the same table).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { Report, reportGaps } from "../src/lib/compliance/open.js";
import { CATALOGS, translator, problemText } from "../src/ui/compliance/text.js";

const TABLE = JSON.parse(readFileSync(new URL("../../tests/fixtures/gaps.json", import.meta.url), "utf8"));
const SESSION = "ses_0000beef";

for (const gapCase of TABLE.cases) {
  test(`gaps: ${gapCase.name} is reported as in the shared table`, () => {
    const report = new Report();
    report.transcripts.set(SESSION, { format: "mediation-transcript/v1", case_id: "cas_00c0ffee", session_id: SESSION,
      participants: [], recordings: {}, events: gapCase.events });
    reportGaps(report);
    assert.deepEqual(report.problems.map(({ group, code }) => [group, code]),
      gapCase.problems.map((expected) => [expected.group, "recording_gap"]));
    report.problems.forEach(({ params }, i) => {
      assert.equal(params.range, gapCase.problems[i].range);
      assert.equal(params.reason, gapCase.problems[i].reason);
    });
    assert.equal(report.complete, gapCase.problems.length === 0);
    for (const expected of gapCase.problems) {
      const probe = expected.group[0] === "recording" ? expected.group : ["recording", SESSION, "usr_other", "0000"];
      assert.ok(report.spoiled(probe), "the file the gap is in is INCOMPLETE");
    }
    for (const lang of Object.keys(CATALOGS)) {
      const t = translator(lang);
      for (const problem of report.problems) {
        const text = problemText(t, problem);
        assert.ok(text.includes(problem.params.range) && text.includes(problem.params.reason), text);
      }
    }
  });
}
