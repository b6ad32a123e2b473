// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface IMemberRegistry {
    function isMember(address account) external view returns (bool);
}

/// @title Merkle roots of members' records, one gapless chain per (member, kind).
/// @notice seq and prevRoot are passed explicitly: a node re-sending a batch after a crash gets a revert
/// instead of a second anchor, and nobody can fork or rewrite their own history unseen.
contract AnchorRegistry {
    /// Two storage slots per anchor: the previous root is the root stored at seq - 1, not a copy.
    struct Stored {
        bytes32 root;
        uint64 leafCount;
        uint64 timestamp;
        uint64 blockNumber;
    }

    struct Anchor {
        bytes32 root;
        bytes32 prevRoot;
        uint64 leafCount;
        uint64 timestamp;
        uint64 blockNumber;
    }

    IMemberRegistry private immutable members;
    mapping(address => mapping(bytes32 => uint64)) public lastSeq;
    mapping(address => mapping(bytes32 => mapping(uint64 => Stored))) private anchors;

    event Anchored(
        address indexed member,
        bytes32 indexed kind,
        uint64 indexed seq,
        bytes32 root,
        bytes32 prevRoot,
        uint64 leafCount,
        uint64 timestamp
    );

    constructor(address registry_) {
        require(registry_ != address(0), "zero registry");
        members = IMemberRegistry(registry_);
    }

    function registry() external view returns (address) {
        return address(members);
    }

    function anchor(bytes32 kind, uint64 seq, bytes32 root, bytes32 prevRoot, uint64 leafCount) external {
        require(members.isMember(msg.sender), "not a member");
        uint64 last = lastSeq[msg.sender][kind];
        require(seq == last + 1, "bad sequence");
        bytes32 expectedPrev = last == 0 ? bytes32(0) : anchors[msg.sender][kind][last].root;
        require(prevRoot == expectedPrev, "wrong previous root");
        require(root != bytes32(0), "empty root");
        require(leafCount > 0, "empty batch");
        lastSeq[msg.sender][kind] = seq;
        anchors[msg.sender][kind][seq] = Stored(root, leafCount, uint64(block.timestamp), uint64(block.number));
        emit Anchored(msg.sender, kind, seq, root, prevRoot, leafCount, uint64(block.timestamp));
    }

    function getAnchor(address member, bytes32 kind, uint64 seq) external view returns (Anchor memory) {
        Stored storage a = anchors[member][kind][seq];
        if (a.root == bytes32(0)) {
            return Anchor(bytes32(0), bytes32(0), 0, 0, 0);
        }
        bytes32 prev = seq > 1 ? anchors[member][kind][seq - 1].root : bytes32(0);
        return Anchor(a.root, prev, a.leafCount, a.timestamp, a.blockNumber);
    }

    /// @notice Folds a merkletools-style path (sha256, no inner-node prefix) from leaf to root.
    function verifyInclusion(
        bytes32 leaf,
        bytes32[] calldata siblings,
        bool[] calldata siblingIsLeft,
        bytes32 root
    ) public pure returns (bool) {
        require(siblings.length == siblingIsLeft.length, "length mismatch");
        bytes32 h = leaf;
        for (uint256 i = 0; i < siblings.length; i++) {
            h = siblingIsLeft[i] ? sha256(abi.encodePacked(siblings[i], h)) : sha256(abi.encodePacked(h, siblings[i]));
        }
        return h == root;
    }

    function verifyAnchored(
        address member,
        bytes32 kind,
        uint64 seq,
        bytes32 leaf,
        bytes32[] calldata siblings,
        bool[] calldata siblingIsLeft
    ) external view returns (bool) {
        bytes32 root = anchors[member][kind][seq].root;
        if (root == bytes32(0)) {
            return false;
        }
        return verifyInclusion(leaf, siblings, siblingIsLeft, root);
    }
}
