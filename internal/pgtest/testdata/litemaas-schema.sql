-- Fixture for tests only: mirrors the part of the LiteMaaS backend's schema (database litemaas_db) that
-- litemaas-sync reads and writes. The backend owns the real schema and creates it at start-up; the job never
-- creates or alters these tables (apart from making users.oauth_id nullable).
-- Like the backend, it uses IF NOT EXISTS so that loading it twice is harmless.

CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- oauth_id is NOT NULL as upstream still creates it: the job's migration drops that constraint.
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username varchar(255) UNIQUE NOT NULL,
    email varchar(255) UNIQUE NOT NULL,
    full_name varchar(255),
    oauth_provider varchar(50) NOT NULL,
    oauth_id varchar(255) NOT NULL,
    roles text[] DEFAULT ARRAY['user'],
    is_active boolean DEFAULT true,
    last_login_at timestamptz,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    UNIQUE (oauth_provider, oauth_id)
);

CREATE TABLE IF NOT EXISTS models (
    id varchar(255) PRIMARY KEY,
    name varchar(255) NOT NULL,
    provider varchar(100) NOT NULL,
    description text,
    category varchar(100),
    context_length integer,
    max_tokens integer,
    tpm integer,
    rpm integer,
    input_cost_per_token decimal(15, 10),
    output_cost_per_token decimal(15, 10),
    supports_vision boolean DEFAULT false,
    supports_function_calling boolean DEFAULT false,
    supports_tool_choice boolean DEFAULT false,
    supports_parallel_function_calling boolean DEFAULT false,
    supports_streaming boolean DEFAULT true,
    features text[],
    availability varchar(50) DEFAULT 'available',
    version varchar(50),
    metadata jsonb DEFAULT '{}',
    api_base varchar(500),
    litellm_model_id varchar(255),
    backend_model_name varchar(255),
    restricted_access boolean DEFAULT false,
    encrypted_api_key text,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

-- model_id has no ON DELETE clause: a model with subscriptions cannot be deleted.
CREATE TABLE IF NOT EXISTS subscriptions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model_id varchar(255) NOT NULL REFERENCES models (id),
    status varchar(20) DEFAULT 'active',
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name varchar(255),
    key_hash varchar(255) UNIQUE NOT NULL,
    key_prefix varchar(20),
    is_active boolean DEFAULT true,
    last_used_at timestamptz,
    expires_at timestamptz,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_key_models (
    api_key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    model_id varchar(255) NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    created_at timestamptz DEFAULT now(),
    PRIMARY KEY (api_key_id, model_id)
);

DROP TRIGGER IF EXISTS update_users_updated_at ON users;
CREATE TRIGGER update_users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

DROP TRIGGER IF EXISTS update_models_updated_at ON models;
CREATE TRIGGER update_models_updated_at BEFORE UPDATE ON models
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

DROP TRIGGER IF EXISTS update_subscriptions_updated_at ON subscriptions;
CREATE TRIGGER update_subscriptions_updated_at BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

DROP TRIGGER IF EXISTS update_api_keys_updated_at ON api_keys;
CREATE TRIGGER update_api_keys_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
