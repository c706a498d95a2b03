-- When each camera last delivered a frame to any replica (issue 21), so that the cameras online/offline gauge is
-- the fleet's truth rather than one replica's view. Each replica upserts the cameras it heard from every few
-- seconds (one statement for all of them); a separate table keeps this churn off the camera rows that
-- UpdateCamera locks. Times are the database's clock, so replicas with skewed clocks agree.
CREATE TABLE camera_last_frames (
    camera_id       text PRIMARY KEY REFERENCES cameras (camera_id) ON DELETE CASCADE,
    last_frame_time timestamptz NOT NULL
);
