-- Publishing rules (rules/): every version of every scope's rule set, kept. The current set
-- of a scope is its highest version; an empty body after a non-empty one clears the scope.
CREATE TABLE publishing_rules (
    scope      TEXT    NOT NULL, -- root | department:<SIS account id> | course:<SIS course id>
    version    INTEGER NOT NULL, -- 1, 2, … per scope
    body       TEXT    NOT NULL, -- the RuleSet as JSON (only the keys the scope sets)
    author     TEXT    NOT NULL, -- who: a person, a token's name, cli:<user>
    reason     TEXT,
    created_at INTEGER NOT NULL, -- unix ms
    PRIMARY KEY (scope, version)
);
