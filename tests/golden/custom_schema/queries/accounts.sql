-- name: get_account(id)^
-- One account.
SELECT id, login, password_hash, tier, verified, closed_at, balance FROM accounts WHERE id = :id;

-- name: close_account(id, closed_at)!
-- Close an account.
UPDATE accounts SET closed_at = :closed_at WHERE id = :id;

-- name: followers_of(followed_id)
-- Who follows an account.
SELECT a.login, a.tier FROM follows AS f INNER JOIN accounts AS a ON f.follower_id = a.id WHERE f.followed_id = :followed_id;
