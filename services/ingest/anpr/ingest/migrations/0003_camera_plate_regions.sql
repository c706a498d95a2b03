-- What recognition should expect of a camera's frames: the plate regions it sees (ISO 3166 codes, most likely
-- first; empty: the recognize service's default) and whether it sends plate crops rather than scenes.
ALTER TABLE cameras
    ADD COLUMN plate_regions text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(plate_regions) <= 8),
    ADD COLUMN sends_plate_crops boolean NOT NULL DEFAULT false;
