-- Catalog ids become text (catalog/key.rs): Canvas's ids are numbers, but Panopto's are GUIDs
-- and rooms are codes such as `KNE-120`. Numbers keep their canonical decimal spelling, so
-- existing rows keep their keys and subjects. SQLite cannot change a column's type in place:
-- the table is rebuilt and its rows copied.
CREATE TABLE catalog_entities_text_ids (
    kind         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    deleted      BOOLEAN NOT NULL,
    version_time INTEGER NOT NULL,
    version_tie  TEXT    NOT NULL,
    sequence     INTEGER NOT NULL,
    course_id    INTEGER,
    section_id   INTEGER,
    user_id      INTEGER,
    written_at   INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
INSERT INTO catalog_entities_text_ids
    SELECT kind, CAST(id AS TEXT), state, deleted, version_time, version_tie, sequence,
           course_id, section_id, user_id, written_at
    FROM catalog_entities;
DROP TABLE catalog_entities;
ALTER TABLE catalog_entities_text_ids RENAME TO catalog_entities;
CREATE INDEX catalog_by_course ON catalog_entities (course_id, kind) WHERE course_id IS NOT NULL;
CREATE INDEX catalog_by_section ON catalog_entities (section_id, kind) WHERE section_id IS NOT NULL;
CREATE INDEX catalog_by_user ON catalog_entities (user_id, kind) WHERE user_id IS NOT NULL;
