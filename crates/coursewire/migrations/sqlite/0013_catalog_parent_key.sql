-- A text parent worth an index, for the SIS and timetable kinds whose parents are not Canvas
-- integers: a meeting's room, a SIS enrollment's section. Matching a recording reads the
-- meetings of two rooms, and a section's roster its enrollments, without scanning the kind.
ALTER TABLE catalog_entities ADD COLUMN parent_key TEXT;
UPDATE catalog_entities SET parent_key = json_extract(state, '$.room_id') WHERE kind = 'meeting';
UPDATE catalog_entities SET parent_key = json_extract(state, '$.section_id')
    WHERE kind = 'sis_enrollment';
CREATE INDEX catalog_by_parent_key ON catalog_entities (kind, parent_key)
    WHERE parent_key IS NOT NULL;
