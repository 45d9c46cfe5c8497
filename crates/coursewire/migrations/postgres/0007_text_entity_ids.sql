-- Catalog ids become text (catalog/key.rs): Canvas's ids are numbers, but Panopto's are GUIDs
-- and rooms are codes such as `KNE-120`. Numbers keep their canonical decimal spelling, so
-- existing rows keep their keys and subjects.
ALTER TABLE catalog_entities ALTER COLUMN id TYPE TEXT USING id::text;
